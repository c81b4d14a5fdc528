import { AllocError, GlobalAllocator } from '@heaplab/core';
import { BackendFixture, expectAllocError, makeBackendContext } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { slabBackend } from '../src/index.js';
import { CLASS_OBJECTS, CLASS_PAGES, CLASS_SIZE, classOf } from '../src/size-classes.js';
import type { SlabAllocator } from '../src/slab.js';
import { PAGE_FREE, PAGE_LARGE, PAGE_META, PAGE_SLAB, PAGE_UNMANAGED } from '../src/layout.js';
import { census, listCounts, makeSlab, MiB, PAGE, pageOwner } from './harness.js';

/** Allocates `count` blocks of `size` bytes, expecting each to succeed. */
function fill(slab: SlabAllocator, size: number, count: number, align = 8): number[] {
  return Array.from({ length: count }, () => {
    const address = slab.allocate(size, align);
    expect(address, `allocation of ${size} bytes`).not.toBe(0);
    return address;
  });
}

/** Expects `address` to be refused as no live block, with the heap left as it was. */
function expectRefused(slab: SlabAllocator, address: number): void {
  const used = slab.usedBytes();
  const error = expectAllocError(() => slab.release(address), 'NotAllocated');
  expect(error.message).toContain(address.toString(16));
  expectAllocError(() => slab.usableSize(address), 'NotAllocated');
  expectAllocError(() => slab.resizeInPlace(address, 8), 'NotAllocated');
  expect(slab.usedBytes()).toBe(used);
  slab.check();
}

describe('slab backend: where blocks come from', () => {
  it('serves sizes up to 8 KiB from slabs of their class and larger ones as page runs', () => {
    const { slab } = makeSlab();
    for (const [size, usable] of [
      [0, 8],
      [1, 8],
      [100, 112],
      [4096, 4096],
      [4097, 5120],
      [4160, 5120],
      [8192, 8192],
    ]) {
      const address = slab.allocate(size!, 8);
      expect(slab.usableSize(address), `usable size for ${size}`).toBe(usable);
      const owner = pageOwner(slab, address);
      expect(owner.kind).toBe(PAGE_SLAB);
      expect(CLASS_SIZE[owner.cls]).toBe(usable);
      expect((address - owner.start) % usable!).toBe(0);
    }
    for (const [size, pages] of [
      [8193, 3],
      [12288, 3],
      [1 * MiB + 1, 257],
    ]) {
      const address = slab.allocate(size!, 8);
      expect(address % PAGE).toBe(0);
      expect(slab.usableSize(address)).toBe(pages! * PAGE);
      expect(pageOwner(slab, address)).toEqual({ kind: PAGE_LARGE, start: address, cls: 0, runPages: pages });
    }
    slab.check();
  });

  it('gives size 0 a unique block and 8-byte alignment to every object', () => {
    const { slab } = makeSlab();
    const zeros = fill(slab, 0, 600);
    expect(new Set(zeros).size).toBe(600);
    for (let size = 1; size <= 300; size++) expect(slab.allocate(size, 8) % 8).toBe(0);
    slab.check();
  });

  it('aligns objects by their class, and over-aligned requests as page runs', () => {
    const { slab } = makeSlab();
    const a64 = slab.allocate(100, 64);
    expect(a64 % 64).toBe(0);
    expect(slab.usableSize(a64)).toBe(128);
    const page = slab.allocate(10, PAGE);
    expect(page % PAGE).toBe(0);
    expect(pageOwner(slab, page).kind).toBe(PAGE_SLAB);
    expect(slab.usableSize(page)).toBe(4096);
    const big = slab.allocate(10, 64 * 1024);
    expect(big % (64 * 1024)).toBe(0);
    expect(pageOwner(slab, big)).toMatchObject({ kind: PAGE_LARGE, runPages: 1 });
    slab.check();
  });

  it('serves a small request as a page run when no slab of its class can be had', () => {
    const { slab } = makeSlab();
    // Take every free page but one with large runs.
    const runs: number[] = [];
    while (slab.pages.availablePages() > 1) {
      const address = slab.allocate(Math.min(64, slab.pages.availablePages() - 1) * PAGE, 8);
      expect(address).not.toBe(0);
      runs.push(address);
    }
    expect(CLASS_PAGES[classOf(3000)]).toBeGreaterThan(1);
    const small = slab.allocate(3000, 8);
    expect(small).not.toBe(0);
    expect(pageOwner(slab, small)).toMatchObject({ kind: PAGE_LARGE, runPages: 1 });
    expect(slab.usableSize(small)).toBe(PAGE);
    expect(slab.stats().largestFreeBlock).toBe(0);
    expect(slab.allocate(8, 8)).toBe(0);
    slab.check();
    slab.release(small);
    for (const address of runs) slab.release(address);
    expect(slab.usedBytes()).toBe(0);
    slab.check();
  });

  it('answers sizes no heap could hold with 0, changing nothing', () => {
    const { slab } = makeSlab();
    const before = slab.pages.usedPages();
    for (const size of [slab.totalBytes() + 1, 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      expect(slab.allocate(size, 8)).toBe(0);
      expect(slab.allocate(size, PAGE * 16)).toBe(0);
    }
    expect(slab.pages.usedPages()).toBe(before);
    slab.check();
  });
});

describe('slab backend: free(address) without a size', () => {
  it('finds the slab from any object address through the page map, in every page of a slab', () => {
    const { slab } = makeSlab();
    const cls = classOf(2560);
    expect(CLASS_PAGES[cls]).toBeGreaterThan(1);
    const objects = fill(slab, 2560, CLASS_OBJECTS[cls]!);
    const start = pageOwner(slab, objects[0]!).start;
    // Objects straddle pages; each one's page leads back to the same slab start.
    for (const address of objects) expect(pageOwner(slab, address).start).toBe(start);
    for (const address of objects.reverse()) slab.release(address);
    expect(slab.usedBytes()).toBe(0);
    slab.check();
  });

  it('refuses interior pointers, slab headers, free slots and pages that hold no block', () => {
    const { slab } = makeSlab({}, 8 * MiB, 6 * MiB);
    const objects = fill(slab, 48, 10);
    const run = slab.allocate(5 * PAGE, 8);
    const owner = pageOwner(slab, objects[0]!);
    const cls = owner.cls;
    expect(CLASS_SIZE[cls]).toBe(48);
    expectRefused(slab, objects[3]! + 8);
    expectRefused(slab, objects[3]! + 40);
    // The header right after the last object, and the slack after the header.
    expectRefused(slab, owner.start + CLASS_OBJECTS[cls]! * 48);
    expectRefused(slab, owner.start + CLASS_PAGES[cls]! * PAGE - 8);
    // A slot that was never handed out.
    expectRefused(slab, objects[9]! + 48);
    // Inside a run, on its first page and on a later one.
    expectRefused(slab, run + 8);
    expectRefused(slab, run + 2 * PAGE);
    // The page map, a free page, and a page past the init range (never managed).
    expect(pageOwner(slab, slab.arenaStart).kind).toBe(PAGE_META);
    expectRefused(slab, slab.arenaStart);
    expect(pageOwner(slab, slab.arenaStart + 5 * MiB).kind).toBe(PAGE_FREE);
    expectRefused(slab, slab.arenaStart + 5 * MiB);
    expect(pageOwner(slab, slab.arenaStart + 7 * MiB).kind).toBe(PAGE_UNMANAGED);
    expectRefused(slab, slab.arenaStart + 7 * MiB);
    // Outside the arena: the facade refuses these first, but the backend holds too.
    expectRefused(slab, slab.arenaStart - 8);
    expectRefused(slab, slab.arenaEnd + PAGE);
    for (const address of objects) expect(slab.usableSize(address)).toBe(48);
  });

  it('catches a double free exactly, in a partial, a full and a cached empty slab', () => {
    const { slab } = makeSlab();
    const cls = classOf(64);
    const objects = fill(slab, 64, CLASS_OBJECTS[cls]! + 2);
    expect(listCounts(slab, cls)).toEqual({ partial: 1, full: 1, empty: 0 });
    // Free one object of the full slab: it becomes partial; freeing it again is refused.
    slab.release(objects[5]!);
    expectRefused(slab, objects[5]!);
    // The second slab (two objects) empties and is cached; its objects stay refused.
    const last = objects.slice(-2);
    for (const address of last) slab.release(address);
    expect(listCounts(slab, cls)).toEqual({ partial: 1, full: 0, empty: 1 });
    for (const address of last) expectRefused(slab, address);
    expect(slab.stats().liveBlocks).toBe(CLASS_OBJECTS[cls]! - 1);
  });
});

describe('slab backend: empty slabs go back to the page layer', () => {
  it('caches at most emptySlabs empty slabs per class and gives the others back at once', () => {
    for (const emptySlabs of [0, 1, 3]) {
      const { slab } = makeSlab({ emptySlabs });
      const cls = classOf(200);
      const perSlab = CLASS_OBJECTS[cls]!;
      const baseline = slab.pages.usedPages();
      const objects = fill(slab, 200, perSlab * 5);
      expect(listCounts(slab, cls)).toEqual({ partial: 0, full: 5, empty: 0 });
      expect(slab.pages.usedPages() - baseline).toBe(5 * CLASS_PAGES[cls]!);
      for (const address of objects) slab.release(address);
      expect(listCounts(slab, cls)).toEqual({ partial: 0, full: 0, empty: emptySlabs });
      expect(slab.pages.usedPages() - baseline).toBe(emptySlabs * CLASS_PAGES[cls]!);
      expect(census(slab).emptyPerClass[cls]).toBe(emptySlabs);
      expect(slab.usedBytes()).toBe(0);
      slab.check();
    }
  });

  it('reuses a cached empty slab before taking new pages', () => {
    const { slab } = makeSlab({ emptySlabs: 1 });
    const first = slab.allocate(32, 8);
    slab.release(first);
    const pages = slab.pages.usedPages();
    expect(slab.allocate(32, 8)).toBe(first);
    expect(slab.pages.usedPages()).toBe(pages);
    slab.check();
  });

  it('gives every page back: after freeing everything the whole heap is one block again', () => {
    const { slab } = makeSlab({ emptySlabs: 2 }, 32 * MiB);
    const total = slab.totalBytes();
    expect(slab.stats().largestFreeBlock).toBe(total);
    const blocks: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const address = slab.allocate(1 + ((i * 7919) % 12000), 8);
      expect(address).not.toBe(0);
      blocks.push(address);
    }
    for (let i = 0; i < blocks.length; i += 2) slab.release(blocks[i]!);
    for (let i = 1; i < blocks.length; i += 2) slab.release(blocks[i]!);
    const stats = slab.stats();
    expect(stats.usedBytes).toBe(0);
    expect(stats.liveBlocks).toBe(0);
    expect(slab.caches.cachedEmptyPages()).toBeGreaterThan(0);
    // Cached empty slabs count as free: the largest block is honest about them...
    expect(stats.largestFreeBlock).toBe(total);
    // ...because a request that needs their pages gets them back from their classes.
    const whole = slab.allocate(total, 8);
    expect(whole).toBe(slab.arenaStart + slab.u32[slab.sPageMapPages]! * PAGE);
    expect(slab.usableSize(whole)).toBe(total);
    expect(slab.caches.cachedEmptyPages()).toBe(0);
    slab.check();
    slab.release(whole);
    expect(slab.pages.usedPages()).toBe(slab.u32[slab.sPageMapPages]);
    slab.check();
  });

  it('gives cached empty slabs back when enough pages are free but not in one run', () => {
    const { slab } = makeSlab({ emptySlabs: 1 });
    const first = slab.allocate(10 * PAGE, 8);
    const small = slab.allocate(32, 8);
    expect(pageOwner(slab, small)).toMatchObject({ start: first + 10 * PAGE, runPages: 1 });
    slab.allocate(10 * PAGE, 8);
    const third = slab.allocate(5 * PAGE, 8);
    expect(slab.allocate(slab.pages.availablePages() * PAGE, 8)).not.toBe(0);
    slab.release(first);
    slab.release(small);
    slab.release(third);
    // 15 pages are free and one more is cached, but 11 in a row exist only with the cached slab.
    expect(slab.pages.availablePages()).toBe(15);
    expect(slab.caches.cachedEmptyPages()).toBe(1);
    expect(slab.stats().largestFreeBlock).toBe(11 * PAGE);
    expect(slab.allocate(11 * PAGE, 8)).toBe(first);
    expect(slab.caches.cachedEmptyPages()).toBe(0);
    slab.check();
  });

  it('reports as largest block what one allocation really gets', () => {
    const { slab } = makeSlab();
    const blocks = fill(slab, 40_000, 150);
    for (let i = 0; i < blocks.length; i += 3) slab.release(blocks[i]!);
    fill(slab, 100, 500);
    const largest = slab.stats().largestFreeBlock;
    expect(largest).toBeGreaterThan(0);
    const got = slab.allocate(largest, 8);
    expect(got).not.toBe(0);
    slab.release(got);
    // One page more than the largest block does not fit anywhere.
    expect(slab.allocate(largest + PAGE, 8)).toBe(0);
    slab.check();
  });
});

describe('slab backend: resizing in place', () => {
  it('keeps an object whose class does not change, and moves one that changes class', () => {
    const { slab } = makeSlab();
    const address = slab.allocate(100, 8);
    expect(slab.resizeInPlace(address, 112)).toBe(true);
    expect(slab.resizeInPlace(address, 97)).toBe(true);
    expect(slab.resizeInPlace(address, 113)).toBe(false);
    expect(slab.resizeInPlace(address, 8)).toBe(false);
    expect(slab.usableSize(address)).toBe(112);
    slab.check();
  });

  it('shrinks a run by freeing its tail pages and grows it into free pages after it', () => {
    const { slab } = makeSlab();
    const run = slab.allocate(10 * PAGE, 8);
    const used = slab.pages.usedPages();
    expect(slab.resizeInPlace(run, 4 * PAGE + 1)).toBe(true);
    expect(slab.usableSize(run)).toBe(5 * PAGE);
    expect(slab.pages.usedPages()).toBe(used - 5);
    expect(pageOwner(slab, run + 5 * PAGE).kind).toBe(PAGE_FREE);
    expect(slab.resizeInPlace(run, 20 * PAGE)).toBe(true);
    expect(slab.usableSize(run)).toBe(20 * PAGE);
    expect(slab.usedBytes()).toBe(20 * PAGE);
    slab.check();
    // A run right after it blocks growth; a size a class serves moves to a slab.
    const neighbour = slab.allocate(3 * PAGE, 8);
    expect(neighbour).toBe(run + 20 * PAGE);
    expect(slab.resizeInPlace(run, 21 * PAGE)).toBe(false);
    expect(slab.resizeInPlace(run, 8000)).toBe(false);
    expect(slab.usableSize(run)).toBe(20 * PAGE);
    expect(slab.resizeInPlace(run, 2 ** 40)).toBe(false);
    slab.check();
  });
});

describe('slab backend: memory given to the heap', () => {
  it('maps later addMemory ranges with the page map made at init', () => {
    const heap = GlobalAllocator.create({ backend: slabBackend, heapBytes: 16 * MiB, initBytes: 4 * MiB });
    try {
      const blocks: number[] = [];
      for (let address = heap.malloc(64 * 1024); address !== 0; address = heap.malloc(64 * 1024)) blocks.push(address);
      expect(blocks.length).toBeLessThan(64);
      heap.addMemory(heap.arenaStart + 4 * MiB, 12 * MiB);
      // Pages left at the end of the first pool and the added ones make one run.
      const more = heap.malloc(8 * MiB);
      expect(more).not.toBe(0);
      expect(more + 8 * MiB).toBeGreaterThan(heap.arenaStart + 4 * MiB);
      expect(heap.check().pools).toBe(2);
      expect(heap.stats().totalBytes).toBe(16 * MiB - heap.stats().metadataBytes);
      heap.free(more);
      for (const address of blocks) heap.free(address);
      // Both pools are contiguous: the whole arena but the page map is one block again.
      expect(heap.stats().largestFreeBlock).toBe(heap.stats().totalBytes);
      heap.check();
    } finally {
      heap.detach();
    }
  });

  it('refuses an init range that cannot hold the page map, leaving the state unformatted', () => {
    // Ranges go through core's checks first (outside the arena), as a heap sends them.
    const fixture = new BackendFixture(slabBackend, { emptySlabs: 1 }, { arenaBytes: 64 * MiB });
    const { backend: slab, context: ctx } = fixture;
    // 64 MiB of pages need 128 KiB of page map: 32 pages, plus one to allocate.
    expectAllocError(() => fixture.init(ctx.arenaStart, 32 * PAGE), 'InvalidParam');
    expectAllocError(() => fixture.init(ctx.arenaStart - PAGE, 64 * PAGE), 'InvalidParam');
    expect(ctx.memory.u32[slab.sMagic]).toBe(0);
    expect(ctx.pools.count()).toBe(0);
    expectAllocError(() => slab.addMemory(ctx.arenaStart, PAGE * 64), 'InvalidParam');
    // From an unaligned start, the first whole page is the next one.
    fixture.init(ctx.arenaStart + 100, 34 * PAGE);
    expect(slab.totalBytes()).toBe(PAGE);
    expect(slab.allocate(PAGE, 8)).toBe(ctx.arenaStart + 33 * PAGE);
    slab.check();
  });

  it('refuses a range without a whole page, or one that overlaps managed pages', () => {
    const { slab, fixture } = makeSlab({}, 8 * MiB, 4 * MiB);
    expectAllocError(() => fixture.addMemory(slab.arenaStart + 4 * MiB + 8, 100), 'InvalidParam');
    // Core refuses the overlap before the backend sees the range.
    expectAllocError(() => fixture.addMemory(slab.arenaStart + 4 * MiB - PAGE, 2 * PAGE), 'MemoryOverlap');
    expect(slab.check().pools).toBe(1);
    fixture.addMemory(slab.arenaStart + 4 * MiB + 8, 2 * PAGE);
    expect(pageOwner(slab, slab.arenaStart + 4 * MiB + PAGE).kind).toBe(PAGE_FREE);
    expect(pageOwner(slab, slab.arenaStart + 4 * MiB).kind).toBe(PAGE_UNMANAGED);
    expect(slab.check().pools).toBe(2);
  });
});

describe('slab backend: addresses past 2^31', () => {
  it('keeps slabs, runs and their page-map entries right above 2 GiB', () => {
    const heap = GlobalAllocator.create({ backend: slabBackend, heapBytes: 2100 * MiB });
    try {
      // A run first, so that everything after it lies above 2^31.
      const low = heap.malloc(2 * 1024 * MiB);
      expect(low).not.toBe(0);
      const objects = Array.from({ length: 2000 }, (_, i) => heap.malloc(8 + (i % 300)));
      const run = heap.malloc(100 * PAGE + 1);
      for (const address of [...objects, run]) {
        expect(address).toBeGreaterThan(2 ** 31);
        heap.memory.u8[address] = 0xab;
      }
      expect(heap.usableSize(run)).toBe(101 * PAGE);
      expectAllocError(() => heap.free(objects[7]! + 8), 'NotAllocated');
      heap.check();
      for (const address of [low, run, ...objects]) heap.free(address);
      expectAllocError(() => heap.free(run), 'NotAllocated');
      expect(heap.stats().usedBytes).toBe(0);
      expect(heap.stats().largestFreeBlock).toBe(heap.stats().totalBytes);
      heap.check();
    } finally {
      heap.detach();
    }
  });
});

describe('slab backend: one heap, many instances', () => {
  it('lets an instance made by another thread over the same buffer free what this one allocated', () => {
    const { slab, ctx } = makeSlab();
    const blocks = [...fill(slab, 24, 300), ...fill(slab, 9000, 3)];
    const other = slabBackend.create(
      makeBackendContext({ memory: ctx.memory, threadId: 2, stateBytes: slabBackend.stateBytes }),
      slabBackend.normalizeOptions({}),
    );
    for (const address of blocks) expect(other.usableSize(address)).toBe(slab.usableSize(address));
    for (const address of blocks) other.release(address);
    expect(slab.usedBytes()).toBe(0);
    expect(other.check()).toEqual(slab.check());
  });

  it('keeps every block in exactly one state through a churn of sizes', () => {
    const { slab } = makeSlab();
    const live = new Map<number, number>();
    let seed = 12345;
    for (let step = 0; step < 4000; step++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      if (live.size > 0 && seed % 3 === 0) {
        const address = [...live.keys()][seed % live.size]!;
        slab.release(address);
        live.delete(address);
      } else {
        const size = seed % 5 === 0 ? seed % 30_000 : seed % 600;
        const address = slab.allocate(size, 8);
        expect(live.has(address)).toBe(false);
        live.set(address, slab.usableSize(address));
      }
    }
    const seen = census(slab);
    expect(seen.live).toEqual(live);
    for (const address of live.keys()) expect(seen.freeSlots.has(address)).toBe(false);
    slab.check();
  });
});

describe('slab backend: errors are AllocErrors', () => {
  it('names the address it refuses', () => {
    const { slab } = makeSlab();
    const address = slab.allocate(16, 8);
    slab.release(address);
    try {
      slab.release(address);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(AllocError);
      expect((error as AllocError).message).toContain(`0x${address.toString(16)}`);
    }
  });
});
