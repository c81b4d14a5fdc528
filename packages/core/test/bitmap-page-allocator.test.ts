import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BM_FIRST_FREE_WORD, BM_MAGIC, BM_MANAGED, BM_USED_PAGES, BitmapPageAllocator } from '../src/pages/bitmap-page-allocator.js';
import { AllocError, type AllocErrorKind } from '../src/errors.js';
import { BACKEND_STATE, CONTROL_BYTES } from '../src/memory/heap-layout.js';
import type { HeapMemory } from '../src/interfaces.js';
import { alignUp, GiB, MAX_ALIGN, MiB, PAGE_SIZE } from '../src/sizes.js';
import { viewsOf } from '../src/memory/shared-heap.js';

/** The arena starts after the 4 MiB control region; the state sits in the backend area. */
const ARENA = CONTROL_BYTES;
const STATE = BACKEND_STATE;

function heap(arenaBytes: number): HeapMemory {
  return viewsOf(new SharedArrayBuffer(CONTROL_BYTES + arenaBytes));
}

/** An allocator whose window is the whole arena, not yet initialised. */
function over(memory: HeapMemory, arenaBytes: number, pageSize = PAGE_SIZE): BitmapPageAllocator {
  return new BitmapPageAllocator(memory, STATE, ARENA, arenaBytes / pageSize, pageSize);
}

/** A fresh allocator managing the whole arena. */
function fresh(arenaBytes = 4 * MiB): { memory: HeapMemory; pa: BitmapPageAllocator } {
  const memory = heap(arenaBytes);
  const pa = over(memory, arenaBytes);
  pa.init(ARENA, arenaBytes);
  return { memory, pa };
}

/** Runs `fn`, expects an `AllocError` of `kind`, and returns it. */
function failure(fn: () => unknown, kind: AllocErrorKind): AllocError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AllocError);
    expect((error as AllocError).kind).toBe(kind);
    return error as AllocError;
  }
  throw new Error(`expected AllocError ${kind}, but the call succeeded`);
}

function counts(pa: BitmapPageAllocator): [number, number, number] {
  return [pa.totalPages(), pa.usedPages(), pa.availablePages()];
}

describe('state size and construction', () => {
  it('reserves a 32-byte header and two bitmaps of 32-bit words', () => {
    expect(BitmapPageAllocator.stateBytes(1)).toBe(32 + 8);
    expect(BitmapPageAllocator.stateBytes(32)).toBe(32 + 8);
    expect(BitmapPageAllocator.stateBytes(33)).toBe(32 + 16);
    expect(BitmapPageAllocator.stateBytes(100)).toBe(32 + 32);
    // A 512 MiB arena of 4 KiB pages: 131072 pages, 4096 words per bitmap.
    expect(BitmapPageAllocator.stateBytes((512 * MiB) / PAGE_SIZE)).toBe(32 + 2 * 4096 * 4);
    failure(() => BitmapPageAllocator.stateBytes(0), 'InvalidParam');
    failure(() => BitmapPageAllocator.stateBytes(1.5), 'InvalidParam');
  });

  it('refuses bad page sizes, windows and state offsets', () => {
    const memory = heap(4 * MiB);
    for (const pageSize of [0, 3, 4, 6, 4097, 2 * GiB]) {
      const make = (): BitmapPageAllocator => new BitmapPageAllocator(memory, STATE, ARENA, 16, pageSize);
      const error = failure(make, 'InvalidParam');
      expect(error.message).toContain(`page size ${pageSize}`);
    }
    failure(() => new BitmapPageAllocator(memory, STATE, ARENA + 100, 16), 'InvalidParam');
    failure(() => new BitmapPageAllocator(memory, STATE, ARENA, 1025), 'InvalidParam'); // past the buffer
    failure(() => new BitmapPageAllocator(memory, STATE, ARENA, 0), 'InvalidParam');
    failure(() => new BitmapPageAllocator(memory, STATE + 2, ARENA, 16), 'InvalidParam');
    // The state inside the window.
    failure(() => new BitmapPageAllocator(memory, ARENA + 4096, ARENA, 16), 'InvalidParam');
    failure(() => new BitmapPageAllocator(memory, CONTROL_BYTES + 4 * MiB - 8, 0, 16), 'InvalidParam');
    // Page sizes below 4 KiB are fine.
    expect(new BitmapPageAllocator(memory, STATE, ARENA, 16, 8).pageSize).toBe(8);
    expect(new BitmapPageAllocator(memory, STATE, ARENA, 16).pageSize).toBe(4096);
  });

  it('does not format: an allocator over zeroed state manages nothing until init', () => {
    const memory = heap(4 * MiB);
    const pa = over(memory, 4 * MiB);
    expect(counts(pa)).toEqual([0, 0, 0]);
    failure(() => pa.allocPages(1, PAGE_SIZE), 'NoMemory');
    failure(() => pa.addMemory(ARENA, PAGE_SIZE), 'InvalidParam');
    expect(failure(() => pa.check(), 'HeapCorrupted').message).toContain('not formatted');
    pa.init(ARENA, 4 * MiB);
    expect(pa.check()).toEqual({ totalPages: 1024, usedPages: 0 });
  });
});

describe("ArceOS's tests", () => {
  it('one page: alloc, dealloc, alloc again at the same address', () => {
    const memory = heap(4 * MiB);
    const pa = over(memory, 4 * MiB);
    pa.init(ARENA + PAGE_SIZE, PAGE_SIZE);
    expect(counts(pa)).toEqual([1, 0, 1]);

    const addr = pa.allocPages(1, PAGE_SIZE);
    expect(addr).toBe(ARENA + 0x1000);
    expect(counts(pa)).toEqual([1, 1, 0]);

    pa.deallocPages(addr, 1);
    expect(counts(pa)).toEqual([1, 0, 1]);

    expect(pa.allocPages(1, PAGE_SIZE)).toBe(ARENA + 0x1000);
    expect(counts(pa)).toEqual([1, 1, 0]);
    expect(failure(() => pa.allocPages(1, PAGE_SIZE), 'NoMemory').message).toContain('0 of 1 pages free');
    expect(pa.check()).toEqual({ totalPages: 1, usedPages: 1 });
  });

  // ArceOS's test_bitmap_page_allocator_size_2g, scaled from 2 GiB to 32 MiB.
  it('many pages, aligned runs, and runs at fixed addresses', () => {
    const size = 32 * MiB;
    const base = ARENA + PAGE_SIZE;
    const pages = size / PAGE_SIZE;
    const memory = heap(36 * MiB);
    const pa = over(memory, 36 * MiB);
    pa.init(base, size);

    for (let count = 1; count <= 1000; count *= 10) {
      expect(counts(pa)).toEqual([pages, 0, pages]);
      const addr = pa.allocPages(count, PAGE_SIZE);
      expect(addr).toBe(base);
      expect(counts(pa)).toEqual([pages, count, pages - count]);
      pa.deallocPages(addr, count);
      expect(counts(pa)).toEqual([pages, 0, pages]);
    }

    // Alignment 4096 * 2^k gives the first aligned address at or after the base.
    for (let k = 0, count = 1; k <= 12; k++, count = (count * 3) % 200 || 1) {
      const align = PAGE_SIZE * 2 ** k;
      const addr = pa.allocPages(count, align);
      expect(addr).toBe(alignUp(base, align));
      expect(addr % align).toBe(0);
      expect(pa.usedPages()).toBe(count);
      pa.deallocPages(addr, count);
      expect(pa.usedPages()).toBe(0);
    }

    // 1, 10, 100 pages at growing alignments, all live at once.
    const live: Array<[number, number]> = [];
    let used = 0;
    for (let i = 0, count = 1, align = PAGE_SIZE; i < 3; i++, count *= 10, align <<= 4) {
      const addr = pa.allocPages(count, align);
      expect(addr % align).toBe(0);
      for (const [other, otherCount] of live) {
        expect(addr + count * PAGE_SIZE <= other || other + otherCount * PAGE_SIZE <= addr).toBe(true);
      }
      live.push([addr, count]);
      used += count;
      expect(counts(pa)).toEqual([pages, used, pages - used]);
    }
    expect(live.map(([addr]) => addr)).toEqual([base, ARENA + 64 * 1024, ARENA + MiB]);
    for (const [addr, count] of live) {
      pa.deallocPages(addr, count);
      used -= count;
      expect(counts(pa)).toEqual([pages, used, pages - used]);
    }

    // The same at fixed addresses.
    let at = base;
    for (let i = 0, count = 1, align = PAGE_SIZE; i < 3; i++) {
      expect(pa.allocPagesAt(at, count, align)).toBe(at);
      used += count;
      expect(counts(pa)).toEqual([pages, used, pages - used]);
      count *= 10;
      align <<= 4;
      at = alignUp(at + count * PAGE_SIZE, align);
    }
    expect(pa.check()).toEqual({ totalPages: pages, usedPages: 111 });
  });

  it('refuses alignments that are not power-of-two multiples of the page size', () => {
    const { pa } = fresh();
    for (const align of [0, 3, 2048, 6144, PAGE_SIZE * 3, -PAGE_SIZE, 1.5, Number.NaN, 2 * GiB]) {
      const error = failure(() => pa.allocPages(1, align), 'InvalidParam');
      expect(error.message).toContain(`alignment ${String(align)}`);
      failure(() => pa.allocPagesAt(ARENA, 1, align), 'InvalidParam');
    }
    for (const count of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const error = failure(() => pa.allocPages(count, PAGE_SIZE), 'InvalidParam');
      expect(error.message).toContain(`page count ${String(count)}`);
      failure(() => pa.allocPagesAt(ARENA, count, PAGE_SIZE), 'InvalidParam');
      failure(() => pa.deallocPages(ARENA, count), 'InvalidParam');
    }
    // The largest alignment ArceOS accepts is valid; nothing in a 4 MiB window meets it
    // except address 0, which is not in the window.
    failure(() => pa.allocPages(1, MAX_ALIGN), 'NoMemory');
    expect(pa.usedPages()).toBe(0);
  });

  it('is out of memory when full, and when no run is long enough', () => {
    const { pa } = fresh(4 * MiB);
    for (let i = 0; i < 1024; i++) expect(pa.allocPages(1, PAGE_SIZE)).toBe(ARENA + i * PAGE_SIZE);
    expect(counts(pa)).toEqual([1024, 1024, 0]);
    failure(() => pa.allocPages(1, PAGE_SIZE), 'NoMemory');
    expect(counts(pa)).toEqual([1024, 1024, 0]);

    // Free the odd pages of the first 64: plenty of pages, no run of two, none 8 KiB aligned.
    for (let i = 1; i < 64; i += 2) pa.deallocPages(ARENA + i * PAGE_SIZE, 1);
    expect(pa.availablePages()).toBe(32);
    expect(pa.largestFreeRun()).toBe(1);
    const error = failure(() => pa.allocPages(2, PAGE_SIZE), 'NoMemory');
    expect(error.message).toContain('32 of 1024 pages free, longest free run 1 pages');
    failure(() => pa.allocPages(1, 2 * PAGE_SIZE), 'NoMemory');
    expect(pa.usedPages()).toBe(992);
    expect(pa.allocPages(1, PAGE_SIZE)).toBe(ARENA + PAGE_SIZE);
    expect(pa.allocPages(1, PAGE_SIZE)).toBe(ARENA + 3 * PAGE_SIZE);
    pa.deallocPages(ARENA + PAGE_SIZE, 1);
    pa.deallocPages(ARENA + 3 * PAGE_SIZE, 1);
    expect(pa.check()).toEqual({ totalPages: 1024, usedPages: 992 });
  });

  it('dealloc then alloc returns the lowest free address again', () => {
    const { pa } = fresh();
    const a = pa.allocPages(1, PAGE_SIZE);
    const b = pa.allocPages(1, PAGE_SIZE);
    const c = pa.allocPages(4, PAGE_SIZE);
    expect([a, b, c]).toEqual([ARENA, ARENA + PAGE_SIZE, ARENA + 2 * PAGE_SIZE]);
    pa.deallocPages(b, 1);
    expect(pa.allocPages(1, PAGE_SIZE)).toBe(b);
    pa.deallocPages(a, 1);
    pa.deallocPages(b, 1);
    expect(pa.allocPages(2, PAGE_SIZE)).toBe(a);
    pa.deallocPages(c, 4);
    // The run of 4 at c is free again and is the lowest one of 3 pages.
    expect(pa.allocPages(3, PAGE_SIZE)).toBe(c);
    expect(pa.check()).toEqual({ totalPages: 1024, usedPages: 5 });
  });
});

describe('alignment is of addresses, not of page indices', () => {
  it('finds aligned addresses in a window that starts off alignment', () => {
    const memory = heap(4 * MiB);
    const windowStart = ARENA + 3 * PAGE_SIZE; // page 0 of the window is at 4 MiB + 12 KiB
    const pa = new BitmapPageAllocator(memory, STATE, windowStart, 512);
    pa.init(windowStart, 512 * PAGE_SIZE);
    // 32 KiB alignment: window page 5 (4 MiB + 32 KiB), not window page 0 or 8.
    expect(pa.allocPages(1, 8 * PAGE_SIZE)).toBe(ARENA + 32 * 1024);
    // Page 0 of the window is still the lowest free page.
    expect(pa.allocPages(1, PAGE_SIZE)).toBe(windowStart);
    // 256 KiB alignment (64 pages: one candidate bit per word): window page 61.
    expect(pa.allocPages(3, 64 * PAGE_SIZE)).toBe(ARENA + 256 * 1024);
    // 4 MiB alignment: only 4 MiB itself, which is before the window.
    failure(() => pa.allocPages(1, 4 * MiB), 'NoMemory');
    expect(pa.usedPages()).toBe(5);
    expect(pa.check()).toEqual({ totalPages: 512, usedPages: 5 });
  });

  it('skips an aligned start whose run is blocked, to the next aligned start', () => {
    const { pa } = fresh();
    pa.allocPagesAt(ARENA + 2 * PAGE_SIZE, 1, PAGE_SIZE);
    // A 4-page run at 16 KiB alignment: page 0 is blocked by page 2, so page 4.
    expect(pa.allocPages(4, 4 * PAGE_SIZE)).toBe(ARENA + 4 * PAGE_SIZE);
    // Unaligned, pages 0..1 fit before the blocker.
    expect(pa.allocPages(2, PAGE_SIZE)).toBe(ARENA);
    // Page 3 is too short for 40 pages: the run crosses a word boundary from page 8.
    expect(pa.allocPages(40, PAGE_SIZE)).toBe(ARENA + 8 * PAGE_SIZE);
    expect(pa.allocPages(1, PAGE_SIZE)).toBe(ARENA + 3 * PAGE_SIZE);
    // 32-page alignment with pages 32..47 taken: the run goes to page 64.
    expect(pa.allocPages(20, 32 * PAGE_SIZE)).toBe(ARENA + 64 * PAGE_SIZE);
    expect(pa.check()).toEqual({ totalPages: 1024, usedPages: 68 });
  });

  it('never lets a run reach past the end of the window', () => {
    const memory = heap(4 * MiB);
    const pa = new BitmapPageAllocator(memory, STATE, ARENA, 64); // two whole words
    pa.init(ARENA, 64 * PAGE_SIZE);
    pa.allocPagesAt(ARENA, 10, PAGE_SIZE);
    pa.allocPagesAt(ARENA + 11 * PAGE_SIZE, 52, PAGE_SIZE);
    // Pages 10 and 63 are free: two pages, but no run of two inside the window.
    expect(pa.availablePages()).toBe(2);
    failure(() => pa.allocPages(2, PAGE_SIZE), 'NoMemory');
    failure(() => pa.allocPages(1, 64 * PAGE_SIZE), 'NoMemory'); // page 0 is taken
    expect(pa.allocPages(1, 2 * PAGE_SIZE)).toBe(ARENA + 10 * PAGE_SIZE);
    expect(pa.allocPages(1, PAGE_SIZE)).toBe(ARENA + 63 * PAGE_SIZE);
    expect(pa.check()).toEqual({ totalPages: 64, usedPages: 64 });
  });

  it('works with pages smaller than 4 KiB', () => {
    const memory = heap(4 * MiB);
    const pa = new BitmapPageAllocator(memory, STATE, ARENA + 8, 1000, 8);
    pa.init(ARENA + 8, 1000 * 8);
    expect(pa.allocPages(3, 64)).toBe(ARENA + 64);
    expect(pa.allocPages(1, 8)).toBe(ARENA + 8);
    failure(() => pa.allocPages(1, 4), 'InvalidParam');
    pa.deallocPages(ARENA + 64, 3);
    expect(pa.check()).toEqual({ totalPages: 1000, usedPages: 1 });
  });
});

describe('allocPagesAt', () => {
  it('allocates exactly where asked, and allocPages then goes around', () => {
    const { pa } = fresh();
    expect(pa.allocPagesAt(ARENA + 2 * PAGE_SIZE, 3, 2 * PAGE_SIZE)).toBe(ARENA + 2 * PAGE_SIZE);
    expect(counts(pa)).toEqual([1024, 3, 1021]);
    expect(pa.allocPages(2, PAGE_SIZE)).toBe(ARENA);
    expect(pa.allocPages(1, PAGE_SIZE)).toBe(ARENA + 5 * PAGE_SIZE);
  });

  it('reports a conflict with NoMemory and changes nothing', () => {
    const { pa } = fresh();
    pa.allocPagesAt(ARENA + 40 * PAGE_SIZE, 1, PAGE_SIZE);
    const error = failure(() => pa.allocPagesAt(ARENA + 32 * PAGE_SIZE, 16, PAGE_SIZE), 'NoMemory');
    expect(error.message).toContain((ARENA + 40 * PAGE_SIZE).toString(16));
    expect(counts(pa)).toEqual([1024, 1, 1023]);
    // Pages 32..39 are still free: the run below the conflict was not taken.
    expect(pa.allocPagesAt(ARENA + 32 * PAGE_SIZE, 8, PAGE_SIZE)).toBe(ARENA + 32 * PAGE_SIZE);
    failure(() => pa.allocPagesAt(ARENA + 40 * PAGE_SIZE, 1, PAGE_SIZE), 'NoMemory');
    expect(pa.check()).toEqual({ totalPages: 1024, usedPages: 9 });
  });

  it('refuses misaligned and unmanaged addresses with InvalidParam', () => {
    const memory = heap(4 * MiB);
    const pa = over(memory, 4 * MiB);
    pa.init(ARENA + 16 * PAGE_SIZE, 64 * PAGE_SIZE); // pages 16..79 managed
    // Page-aligned but not 8 KiB aligned.
    const error = failure(() => pa.allocPagesAt(ARENA + 17 * PAGE_SIZE, 1, 2 * PAGE_SIZE), 'InvalidParam');
    expect(error.message).toContain(`${(ARENA + 17 * PAGE_SIZE).toString(16)}`);
    failure(() => pa.allocPagesAt(ARENA + 16 * PAGE_SIZE + 8, 1, PAGE_SIZE), 'InvalidParam');
    failure(() => pa.allocPagesAt(ARENA + 15 * PAGE_SIZE, 1, PAGE_SIZE), 'InvalidParam'); // unmanaged
    failure(() => pa.allocPagesAt(ARENA + 79 * PAGE_SIZE, 2, PAGE_SIZE), 'InvalidParam'); // runs off the end
    failure(() => pa.allocPagesAt(ARENA - PAGE_SIZE, 1, PAGE_SIZE), 'InvalidParam'); // before the window
    failure(() => pa.allocPagesAt(ARENA + 4 * MiB, 1, PAGE_SIZE), 'InvalidParam'); // after it
    expect(pa.usedPages()).toBe(0);
    expect(pa.allocPagesAt(ARENA + 79 * PAGE_SIZE, 1, PAGE_SIZE)).toBe(ARENA + 79 * PAGE_SIZE);
  });
});

describe('deallocPages', () => {
  it('catches a double free and leaves the counts as they were', () => {
    const { pa } = fresh();
    const addr = pa.allocPages(3, PAGE_SIZE);
    pa.deallocPages(addr, 3);
    expect(counts(pa)).toEqual([1024, 0, 1024]);
    const error = failure(() => pa.deallocPages(addr, 3), 'NotAllocated');
    expect(error.message).toContain(addr.toString(16));
    expect(counts(pa)).toEqual([1024, 0, 1024]);
    expect(pa.check()).toEqual({ totalPages: 1024, usedPages: 0 });
  });

  it('checks every page before freeing any', () => {
    const { pa } = fresh();
    const addr = pa.allocPages(70, PAGE_SIZE); // three words
    pa.deallocPages(addr + 50 * PAGE_SIZE, 1);
    const error = failure(() => pa.deallocPages(addr, 70), 'NotAllocated');
    expect(error.message).toContain((addr + 50 * PAGE_SIZE).toString(16));
    expect(counts(pa)).toEqual([1024, 69, 955]);
    // Page 0 and page 69 of the run are still allocated.
    failure(() => pa.allocPagesAt(addr, 1, PAGE_SIZE), 'NoMemory');
    failure(() => pa.allocPagesAt(addr + 69 * PAGE_SIZE, 1, PAGE_SIZE), 'NoMemory');
    // Freeing in parts works.
    pa.deallocPages(addr, 50);
    pa.deallocPages(addr + 51 * PAGE_SIZE, 19);
    expect(counts(pa)).toEqual([1024, 0, 1024]);
  });

  it('refuses misaligned or unmanaged ranges with InvalidParam', () => {
    const memory = heap(4 * MiB);
    const pa = over(memory, 4 * MiB);
    pa.init(ARENA, 8 * PAGE_SIZE);
    const addr = pa.allocPages(8, PAGE_SIZE);
    failure(() => pa.deallocPages(addr + 8, 1), 'InvalidParam');
    failure(() => pa.deallocPages(addr, 9), 'InvalidParam'); // page 8 is in the window, not managed
    failure(() => pa.deallocPages(ARENA + 4 * MiB, 1), 'InvalidParam');
    failure(() => pa.deallocPages(0, 1), 'InvalidParam');
    expect(counts(pa)).toEqual([8, 8, 0]);
  });
});

describe('init and addMemory', () => {
  it('aligns ranges inward and refuses ranges outside the window or without a whole page', () => {
    const memory = heap(4 * MiB);
    const pa = over(memory, 4 * MiB);
    pa.init(ARENA + 100, 3 * PAGE_SIZE); // whole pages: 1 and 2
    expect(pa.totalPages()).toBe(2);
    expect(pa.allocPages(1, PAGE_SIZE)).toBe(ARENA + PAGE_SIZE);
    failure(() => pa.init(ARENA - PAGE_SIZE, 2 * PAGE_SIZE), 'InvalidParam');
    failure(() => pa.init(ARENA + 4 * MiB - PAGE_SIZE, 2 * PAGE_SIZE), 'InvalidParam');
    failure(() => pa.init(ARENA + 100, PAGE_SIZE), 'InvalidParam'); // no whole page
    failure(() => pa.init(ARENA, 0), 'InvalidParam');
    failure(() => pa.init(ARENA, -1), 'InvalidParam');
    // A failed init leaves the state alone.
    expect(counts(pa)).toEqual([2, 1, 1]);
    // A successful one formats it.
    pa.init(ARENA, 4 * MiB);
    expect(counts(pa)).toEqual([1024, 0, 1024]);
    expect(pa.allocPages(1, PAGE_SIZE)).toBe(ARENA);
  });

  it('adds memory, refuses overlap with MemoryOverlap and ranges out of the window', () => {
    const memory = heap(4 * MiB);
    const pa = over(memory, 4 * MiB);
    pa.init(ARENA + 64 * PAGE_SIZE, 64 * PAGE_SIZE); // pages 64..127
    const high = pa.allocPages(64, PAGE_SIZE);
    expect(high).toBe(ARENA + 64 * PAGE_SIZE);
    failure(() => pa.allocPages(1, PAGE_SIZE), 'NoMemory');

    pa.addMemory(ARENA + 10 * PAGE_SIZE + 1, 21 * PAGE_SIZE - 1); // whole pages 11..30
    expect(counts(pa)).toEqual([84, 64, 20]);
    expect(pa.allocPages(1, PAGE_SIZE)).toBe(ARENA + 11 * PAGE_SIZE);

    const error = failure(() => pa.addMemory(ARENA + 30 * PAGE_SIZE, 40 * PAGE_SIZE), 'MemoryOverlap');
    expect(error.message).toContain((ARENA + 30 * PAGE_SIZE).toString(16));
    failure(() => pa.addMemory(ARENA + 100 * PAGE_SIZE, PAGE_SIZE), 'MemoryOverlap');
    failure(() => pa.addMemory(ARENA + 4 * MiB, PAGE_SIZE), 'InvalidParam');
    failure(() => pa.addMemory(ARENA - PAGE_SIZE, 2 * PAGE_SIZE), 'InvalidParam');
    failure(() => pa.addMemory(ARENA + 1, PAGE_SIZE), 'InvalidParam');
    expect(counts(pa)).toEqual([84, 65, 19]);

    // Pages 31..63 were never managed: adding just them is fine, and they join the run 12..30.
    pa.addMemory(ARENA + 31 * PAGE_SIZE, 33 * PAGE_SIZE);
    expect(pa.largestFreeRun()).toBe(52);
    expect(pa.allocPages(52, PAGE_SIZE)).toBe(ARENA + 12 * PAGE_SIZE);
    expect(pa.check()).toEqual({ totalPages: 117, usedPages: 117 });
  });
});

describe('shared state', () => {
  it('a second allocator over the same buffer is the same allocator', () => {
    const { memory, pa } = fresh();
    const a = pa.allocPages(3, PAGE_SIZE);
    // Another thread would build its own views over the buffer it was posted.
    const other = over(viewsOf(memory.buffer), 4 * MiB);
    expect(counts(other)).toEqual([1024, 3, 1021]);
    failure(() => other.allocPagesAt(a, 1, PAGE_SIZE), 'NoMemory');
    const b = other.allocPages(2, PAGE_SIZE);
    expect(b).toBe(a + 3 * PAGE_SIZE);
    expect(pa.usedPages()).toBe(5);
    // Either may free what the other allocated; double frees are seen by both.
    pa.deallocPages(b, 2);
    failure(() => other.deallocPages(b, 2), 'NotAllocated');
    other.deallocPages(a, 3);
    expect(counts(pa)).toEqual([1024, 0, 1024]);
    expect(pa.check()).toEqual(other.check());
  });

  it('check() notices an allocator built with a different window', () => {
    const { memory } = fresh();
    const wrong = new BitmapPageAllocator(memory, STATE, ARENA, 512);
    expect(failure(() => wrong.check(), 'HeapCorrupted').message).toContain('formatted for 1024 pages');
  });
});

describe('check and largestFreeRun', () => {
  it('reports used pages outside managed memory, bad counters and a bad hint', () => {
    const memory = heap(4 * MiB);
    const pa = over(memory, 4 * MiB);
    pa.init(ARENA, 40 * PAGE_SIZE);
    pa.allocPages(2, PAGE_SIZE);
    expect(pa.check()).toEqual({ totalPages: 40, usedPages: 2 });
    const u32 = memory.u32;
    const managed = (STATE + BM_MANAGED) >> 2;
    const used = managed + 32; // 1024 pages: 32 words per bitmap

    u32[used + 2] = 1; // page 64: not managed
    expect(failure(() => pa.check(), 'HeapCorrupted').message).toContain(`${(ARENA + 64 * PAGE_SIZE).toString(16)} is allocated but not managed`);
    u32[used + 2] = 0;

    u32[(STATE + BM_USED_PAGES) >> 2] = 3;
    expect(failure(() => pa.check(), 'HeapCorrupted').message).toContain('3 used');
    u32[(STATE + BM_USED_PAGES) >> 2] = 2;

    u32[(STATE + BM_FIRST_FREE_WORD) >> 2] = 1; // word 0 still has free pages
    failure(() => pa.check(), 'HeapCorrupted');
    u32[(STATE + BM_FIRST_FREE_WORD) >> 2] = 0;

    u32[(STATE + BM_MAGIC) >> 2] = 0;
    failure(() => pa.check(), 'HeapCorrupted');
  });

  it('measures the longest free run across words', () => {
    const memory = heap(4 * MiB);
    const pa = new BitmapPageAllocator(memory, STATE, ARENA, 100);
    pa.init(ARENA, 100 * PAGE_SIZE);
    expect(pa.largestFreeRun()).toBe(100);
    pa.allocPagesAt(ARENA + 10 * PAGE_SIZE, 1, PAGE_SIZE);
    pa.allocPagesAt(ARENA + 50 * PAGE_SIZE, 1, PAGE_SIZE);
    expect(pa.largestFreeRun()).toBe(49); // pages 51..99
    pa.allocPagesAt(ARENA + 70 * PAGE_SIZE, 1, PAGE_SIZE);
    expect(pa.largestFreeRun()).toBe(39); // pages 11..49
    pa.allocPagesAt(ARENA + 20 * PAGE_SIZE, 1, PAGE_SIZE);
    expect(pa.largestFreeRun()).toBe(29); // pages 21..49 and 71..99
    expect(pa.allocPages(29, PAGE_SIZE)).toBe(ARENA + 21 * PAGE_SIZE);
    expect(pa.largestFreeRun()).toBe(29); // pages 71..99
    expect(pa.allocPages(29, PAGE_SIZE)).toBe(ARENA + 71 * PAGE_SIZE);
    expect(pa.largestFreeRun()).toBe(19); // pages 51..69
    expect(pa.check()).toEqual({ totalPages: 100, usedPages: 62 });
  });
});

// --- model test ------------------------------------------------------------------------------

type Command =
  | { op: 'alloc'; count: number; alignLog: number }
  | { op: 'allocAt'; page: number; count: number; alignLog: number; offset: number }
  | { op: 'dealloc'; pick: number; skip: number; count: number; again: boolean }
  | { op: 'deallocAt'; page: number; count: number }
  | { op: 'badAlign'; align: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('alloc' as const),
      count: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 40 })),
      alignLog: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 7 })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('allocAt' as const),
      page: fc.nat(), // taken modulo the window size plus a little, to land mostly inside
      count: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 40 })),
      alignLog: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }) }),
      offset: fc.oneof(
        { weight: 6, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.constant(8) }, // not page-aligned
      ),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('dealloc' as const),
      pick: fc.nat(),
      skip: fc.nat({ max: 3 }),
      count: fc.integer({ min: 1, max: 80 }),
      again: fc.boolean(), // free a run that was freed before: usually a double free
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('deallocAt' as const),
      page: fc.nat(),
      count: fc.integer({ min: 1, max: 40 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('badAlign' as const),
      align: fc.constantFrom(0, 3, 2048, 6144, PAGE_SIZE * 5, -PAGE_SIZE),
    }),
  },
);

const setup = fc
  .record({
    windowPages: fc.integer({ min: 1, max: 320 }),
    /** Window start, in pages after the arena start: makes address and index alignment differ. */
    shift: fc.integer({ min: 0, max: 7 }),
    init: fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })),
    /** Bytes the init range reaches past its whole pages on each side (aligned inward). */
    slack: fc.tuple(fc.integer({ min: 0, max: PAGE_SIZE - 1 }), fc.integer({ min: 0, max: PAGE_SIZE - 1 })),
    /** Ranges for addMemory, as [page (modulo the window plus 2), pages]. */
    adds: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 60 })), { maxLength: 3 }),
  })
  .map((s) => {
    const first = Math.floor(s.init[0] * (s.windowPages - 1));
    const end = first + 1 + Math.floor(s.init[1] * (s.windowPages - first - 1));
    return { ...s, first, end };
  });

/** Model: which window pages are managed, and the Set of used pages. */
class Model {
  readonly managed: boolean[];
  readonly used = new Set<number>();
  constructor(
    readonly windowPages: number,
    readonly windowStart: number,
  ) {
    this.managed = new Array<boolean>(windowPages).fill(false);
  }
  free(page: number): boolean {
    return this.managed[page] === true && !this.used.has(page);
  }
  total(): number {
    return this.managed.filter(Boolean).length;
  }
  address(page: number): number {
    return this.windowStart + page * PAGE_SIZE;
  }
  /** The lowest start ArceOS would pick, or -1. */
  lowestFit(count: number, align: number): number {
    for (let p = 0; p + count <= this.windowPages; p++) {
      if (this.address(p) % align !== 0) continue;
      let fits = true;
      for (let q = p; q < p + count && fits; q++) fits = this.free(q);
      if (fits) return p;
    }
    return -1;
  }
  longestRun(): number {
    let best = 0;
    let run = 0;
    for (let p = 0; p < this.windowPages; p++) {
      run = this.free(p) ? run + 1 : 0;
      best = Math.max(best, run);
    }
    return best;
  }
  /** Expected failure of allocPagesAt / deallocPages at window page `page`, or null. */
  rangeError(page: number, count: number, op: 'allocAt' | 'dealloc'): AllocErrorKind | null {
    if (page < 0 || page + count > this.windowPages) return 'InvalidParam';
    for (let q = page; q < page + count; q++) if (!this.managed[q]) return 'InvalidParam';
    for (let q = page; q < page + count; q++) {
      if (op === 'allocAt' && this.used.has(q)) return 'NoMemory';
      if (op === 'dealloc' && !this.used.has(q)) return 'NotAllocated';
    }
    return null;
  }
}

// biome-ignore lint/suspicious/noConfusingVoidType: the page allocator's frees return nothing, its allocations a number
function outcome(fn: () => number | void): { value: number | undefined } | { kind: AllocErrorKind } {
  try {
    const value = fn();
    return { value: value ?? undefined };
  } catch (error) {
    if (!(error instanceof AllocError)) throw error;
    return { kind: error.kind };
  }
}

describe('model test', () => {
  // One buffer for every run: init formats the state, so runs cannot see each other.
  const memory = heap(4 * MiB);

  it('matches a JS model over random alloc / allocAt / dealloc sequences', () => {
    fc.assert(
      fc.property(setup, fc.array(command, { minLength: 20, maxLength: 80 }), (s, commands) => {
        const windowStart = ARENA + s.shift * PAGE_SIZE;
        const pa = new BitmapPageAllocator(memory, STATE, windowStart, s.windowPages);
        const model = new Model(s.windowPages, windowStart);

        // init with a range that reaches into its neighbour pages (when they are in the window).
        const head = s.first > 0 ? s.slack[0] : 0;
        const tail = s.end < s.windowPages ? s.slack[1] : 0;
        pa.init(model.address(s.first) - head, (s.end - s.first) * PAGE_SIZE + head + tail);
        for (let p = s.first; p < s.end; p++) model.managed[p] = true;

        for (const [n, count] of s.adds) {
          const page = n % (s.windowPages + 2);
          let expected: AllocErrorKind | null = null;
          if (page + count > s.windowPages) expected = 'InvalidParam';
          else {
            for (let p = page; p < page + count; p++) if (model.managed[p]) expected = 'MemoryOverlap';
          }
          const got = outcome(() => pa.addMemory(model.address(page), count * PAGE_SIZE));
          if (expected === null) {
            expect(got).toEqual({ value: undefined });
            for (let p = page; p < page + count; p++) model.managed[p] = true;
          } else {
            expect(got).toEqual({ kind: expected });
          }
        }

        /** Live allocations and freed ones, as [first page, count]. */
        const live: Array<[number, number]> = [];
        const freed: Array<[number, number]> = [];
        /** A window page from a generated number: mostly inside, sometimes just outside. */
        const pageOf = (n: number): number => (n % (s.windowPages + 4)) - 2;
        const verify = (): void => {
          const total = model.total();
          expect(pa.check()).toEqual({ totalPages: total, usedPages: model.used.size });
          expect(counts(pa)).toEqual([total, model.used.size, total - model.used.size]);
          expect(pa.largestFreeRun()).toBe(model.longestRun());
        };
        verify();

        for (const c of commands) {
          switch (c.op) {
            case 'alloc': {
              const align = PAGE_SIZE << c.alignLog;
              const fit = model.lowestFit(c.count, align);
              const got = outcome(() => pa.allocPages(c.count, align));
              if (fit < 0) {
                expect(got).toEqual({ kind: 'NoMemory' });
                break;
              }
              expect(got).toEqual({ value: model.address(fit) });
              const address = model.address(fit);
              expect(address % align).toBe(0);
              for (let p = fit; p < fit + c.count; p++) {
                expect(model.free(p)).toBe(true); // no overlap with a live run
                model.used.add(p);
              }
              live.push([fit, c.count]);
              break;
            }
            case 'allocAt': {
              const align = PAGE_SIZE << c.alignLog;
              const page = pageOf(c.page);
              const address = model.address(page) + c.offset;
              const expected = c.offset !== 0 || address % align !== 0 ? 'InvalidParam' : model.rangeError(page, c.count, 'allocAt');
              const got = outcome(() => pa.allocPagesAt(address, c.count, align));
              if (expected !== null) {
                expect(got).toEqual({ kind: expected });
                break;
              }
              expect(got).toEqual({ value: address });
              for (let p = page; p < page + c.count; p++) model.used.add(p);
              live.push([page, c.count]);
              break;
            }
            case 'dealloc': {
              // Free all or the tail of a live run, or free a freed run again.
              const list = c.again && freed.length > 0 ? freed : live;
              if (list.length === 0) break;
              const index = c.pick % list.length;
              const [page, count] = list[index]!;
              const from = page + Math.min(c.skip, count - 1);
              const n = Math.min(c.count, page + count - from);
              const expected = model.rangeError(from, n, 'dealloc');
              const got = outcome(() => pa.deallocPages(model.address(from), n));
              if (expected !== null) {
                expect(got).toEqual({ kind: expected });
                break;
              }
              expect(got).toEqual({ value: undefined });
              for (let p = from; p < from + n; p++) model.used.delete(p);
              freed.push([from, n]);
              if (list === live) {
                if (from === page) live.splice(index, 1);
                else live[index] = [page, from - page];
              }
              break;
            }
            case 'deallocAt': {
              const page = pageOf(c.page);
              const expected = model.rangeError(page, c.count, 'dealloc');
              const got = outcome(() => pa.deallocPages(model.address(page), c.count));
              if (expected !== null) {
                expect(got).toEqual({ kind: expected });
                break;
              }
              expect(got).toEqual({ value: undefined });
              for (let p = page; p < page + c.count; p++) model.used.delete(p);
              break;
            }
            case 'badAlign': {
              expect(outcome(() => pa.allocPages(1, c.align))).toEqual({ kind: 'InvalidParam' });
              break;
            }
          }
          verify();
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('speed', () => {
  it('fills and empties a 512 MiB window page by page, searching word-wise', () => {
    const arenaBytes = 512 * MiB;
    const memory = heap(arenaBytes);
    const pa = over(memory, arenaBytes);
    pa.init(ARENA, arenaBytes);
    const pages = arenaBytes / PAGE_SIZE;
    let last = 0;
    for (let i = 0; i < pages; i++) last = pa.allocPages(1, PAGE_SIZE);
    expect(last).toBe(ARENA + arenaBytes - PAGE_SIZE);
    failure(() => pa.allocPages(1, PAGE_SIZE), 'NoMemory');
    // Free a run near the top: the search skips the full words below it.
    pa.deallocPages(ARENA + arenaBytes - 64 * PAGE_SIZE, 40);
    expect(pa.allocPages(33, 32 * PAGE_SIZE)).toBe(ARENA + arenaBytes - 64 * PAGE_SIZE);
    expect(pa.check()).toEqual({ totalPages: pages, usedPages: pages - 7 });
  });
});
