/**
 * ArceOS's `BitmapPageAllocator<PAGE_SIZE>` with all of its state in the shared heap. The
 * object holds only views, constants and offsets, so every thread that builds one over the
 * same buffer and state offset works on the same allocator. It is not thread-safe: callers
 * hold a lock around every call. Plain typed-array reads and writes are enough inside the lock.
 *
 * The allocator can manage the pages of a fixed window, `[windowStart, windowStart +
 * windowPages * pageSize)`. Each window page has one bit in `managed` (given by `init` or
 * `addMemory`) and one in `used` (allocated). A page is free when it is managed and not used.
 * Its state, at `stateOffset`:
 *
 * ```text
 *  stateOffset +
 *  0        +------------------------------------------+  header, 32 bytes
 *           | BM_MAGIC            'BMPA' once formatted |
 *  4        | BM_PAGE_SIZE        bytes per page        |
 *  8        | BM_WINDOW_START     address of page 0     |
 *  12       | BM_WINDOW_PAGES     pages in the window   |
 *  16       | BM_TOTAL_PAGES      managed pages         |
 *  20       | BM_USED_PAGES       allocated pages       |
 *  24       | BM_FIRST_FREE_WORD  search hint (a word)  |
 *  28       | reserved, 0                              |
 *  32       +------------------------------------------+  BM_MANAGED
 *           | managed bitmap: W = ceil(windowPages/32)  |
 *           | 32-bit words                             |
 *  32+4W    +------------------------------------------+
 *           | used bitmap: W words                     |
 *  32+8W    +------------------------------------------+  = stateBytes(windowPages)
 * ```
 *
 * Bit `b` of word `w` (mask `1 << b`) is window page `p = 32w + b`, at address
 * `windowStart + p * pageSize`. Invariants, all verified by `check()`:
 * 1. `used ⊆ managed`: only managed pages are allocated.
 * 2. No bit at or beyond page `windowPages` is set in either bitmap, so the tail of the last
 *    word reads as "not free" and stops every search without a bounds test.
 * 3. `BM_TOTAL_PAGES` = popcount(managed), `BM_USED_PAGES` = popcount(used).
 * 4. `BM_FIRST_FREE_WORD` <= W, and no word below it has a free page. Allocation only removes
 *    free pages, so it keeps this; `deallocPages` and `addMemory` lower the hint to their
 *    first word; `allocPages` moves it up past full words before it searches. Searches start
 *    there and still return the lowest address that fits, as ArceOS does.
 * 5. The header's page size and window equal what each allocator object was built with.
 */

import { AllocError, hex } from '../errors.js';
import type { HeapMemory, PageAllocator } from '../interfaces.js';
import { alignDown, alignUp, isPowerOfTwo, MAX_ALIGN, PAGE_SIZE } from '../sizes.js';

/** 'BMPA' as a little-endian word: the state was formatted by `init`. */
export const BM_MAGIC_VALUE = 0x41504d42;

/** Byte offset (from the state offset) of the magic word. */
export const BM_MAGIC = 0;
/** Byte offset of the page size the state was formatted with. */
export const BM_PAGE_SIZE = 4;
/** Byte offset of the window start the state was formatted with. */
export const BM_WINDOW_START = 8;
/** Byte offset of the window length in pages. */
export const BM_WINDOW_PAGES = 12;
/** Byte offset of the number of managed pages. */
export const BM_TOTAL_PAGES = 16;
/** Byte offset of the number of allocated pages. */
export const BM_USED_PAGES = 20;
/** Byte offset of the search hint: the lowest bitmap word that may hold a free page. */
export const BM_FIRST_FREE_WORD = 24;
/** Bytes of header; the managed bitmap starts here. */
export const BM_HEADER_BYTES = 32;
/** Byte offset of the managed bitmap. */
export const BM_MANAGED = BM_HEADER_BYTES;

/** A word with every bit set, as the int32 that bitwise operators return. */
const ALL = -1;

/** Index of the lowest set bit of `x`; `x` must not be 0. */
function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** Number of set bits in a 32-bit word. */
function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** Bits `lo` to `hi - 1` of a word, for `0 <= lo < hi <= 32`. */
function bitRange(lo: number, hi: number): number {
  return (ALL << lo) & (hi === 32 ? ALL : ~(ALL << hi));
}

/** What `BitmapPageAllocator.check()` found when every invariant held. */
export interface PageCheckReport {
  /** Managed pages (popcount of `managed`). */
  totalPages: number;
  /** Allocated pages (popcount of `used`). */
  usedPages: number;
}

/**
 * A page allocator over one bitmap per window page, with its whole state in shared memory.
 * Lowest address first, as ArceOS's `BitmapPageAllocator`; `addMemory` is supported.
 * Every method is allocation-free on success.
 */
export class BitmapPageAllocator implements PageAllocator {
  /** Bytes per page. */
  readonly pageSize: number;
  /** Address of the first page the allocator could manage. */
  readonly windowStart: number;
  /** Number of pages in the window. */
  readonly windowPages: number;
  /** Byte offset of the state in the buffer. */
  readonly stateOffset: number;

  private readonly u32: Uint32Array;
  /** End of the window (exclusive). */
  private readonly windowEnd: number;
  /** `windowStart / pageSize`: the absolute number of window page 0, for address alignment. */
  private readonly firstPageNumber: number;
  /** Words in each bitmap. */
  private readonly words: number;
  /** Word index of the header, the managed bitmap and the used bitmap in `u32`. */
  private readonly header: number;
  private readonly managed: number;
  private readonly used: number;

  /**
   * Bytes of state to reserve for a window of `windowPages` pages.
   * @throws AllocError `InvalidParam` when `windowPages` is not a positive integer
   */
  static stateBytes(windowPages: number): number {
    if (!Number.isSafeInteger(windowPages) || windowPages < 1) {
      throw new AllocError('InvalidParam', `window of ${String(windowPages)} pages is not a positive integer`);
    }
    return BM_HEADER_BYTES + 8 * Math.ceil(windowPages / 32);
  }

  /**
   * Binds an allocator to the state at `stateOffset`. Does not format it: one thread calls
   * `init` once; the others construct with the same arguments and use it as it is.
   * @param memory views over the heap buffer
   * @param stateOffset byte offset of the state (`stateBytes(windowPages)` bytes), a multiple
   *   of 4, outside the window
   * @param windowStart first address that can be managed, a multiple of `pageSize`
   * @param windowPages pages in the window
   * @param pageSize bytes per page: a power of two from 8 to `MAX_ALIGN`, default `PAGE_SIZE`
   * @throws AllocError `InvalidParam` for a bad page size, a window or state that does not fit
   *   in the buffer (or past 4 GiB), or a state that overlaps the window
   */
  constructor(memory: HeapMemory, stateOffset: number, windowStart: number, windowPages: number, pageSize: number = PAGE_SIZE) {
    if (!isPowerOfTwo(pageSize) || pageSize < 8 || pageSize > MAX_ALIGN) {
      throw new AllocError('InvalidParam', `page size ${String(pageSize)} is not a power of two from 8 to ${MAX_ALIGN}`);
    }
    const stateBytes = BitmapPageAllocator.stateBytes(windowPages);
    const bufferBytes = memory.buffer.byteLength;
    if (!Number.isSafeInteger(windowStart) || windowStart < 0 || windowStart % pageSize !== 0) {
      throw new AllocError('InvalidParam', `window start ${String(windowStart)} is not a non-negative multiple of the page size ${pageSize}`);
    }
    const windowEnd = windowStart + windowPages * pageSize;
    if (windowEnd > bufferBytes || windowEnd > 2 ** 32) {
      throw new AllocError(
        'InvalidParam',
        `window ${hex(windowStart)}..${hex(windowEnd)} does not fit in the buffer of ` + `${bufferBytes} bytes (and below 4 GiB)`,
      );
    }
    if (!Number.isSafeInteger(stateOffset) || stateOffset < 0 || stateOffset % 4 !== 0) {
      throw new AllocError('InvalidParam', `state offset ${String(stateOffset)} is not a non-negative multiple of 4`);
    }
    const stateEnd = stateOffset + stateBytes;
    if (stateEnd > bufferBytes) {
      throw new AllocError('InvalidParam', `state ${hex(stateOffset)}..${hex(stateEnd)} does not fit in the buffer of ${bufferBytes} bytes`);
    }
    if (stateOffset < windowEnd && windowStart < stateEnd) {
      throw new AllocError('InvalidParam', `state ${hex(stateOffset)}..${hex(stateEnd)} overlaps the window ` + `${hex(windowStart)}..${hex(windowEnd)}`);
    }
    this.u32 = memory.u32;
    this.pageSize = pageSize;
    this.windowStart = windowStart;
    this.windowPages = windowPages;
    this.windowEnd = windowEnd;
    this.stateOffset = stateOffset;
    this.firstPageNumber = windowStart / pageSize;
    this.words = Math.ceil(windowPages / 32);
    this.header = stateOffset >> 2;
    this.managed = (stateOffset + BM_MANAGED) >> 2;
    this.used = this.managed + this.words;
  }

  /**
   * Formats the state (nothing managed, nothing used), then manages the whole pages of
   * `[start, start + size)`: `[alignUp(start, pageSize), alignDown(start + size, pageSize))`.
   * On failure the state is left as it was.
   * @throws AllocError `InvalidParam` when the range is not inside the window or holds no
   *   whole page
   */
  init(start: number, size: number): void {
    this.checkMemoryRange(start, size, 'init');
    const first = (alignUp(start, this.pageSize) - this.windowStart) / this.pageSize;
    const end = (alignDown(start + size, this.pageSize) - this.windowStart) / this.pageSize;
    const u32 = this.u32;
    const h = this.header;
    u32.fill(0, h, this.used + this.words);
    u32[h + (BM_PAGE_SIZE >> 2)] = this.pageSize;
    u32[h + (BM_WINDOW_START >> 2)] = this.windowStart;
    u32[h + (BM_WINDOW_PAGES >> 2)] = this.windowPages;
    this.setBits(this.managed, first, end, true);
    u32[h + (BM_TOTAL_PAGES >> 2)] = end - first;
    u32[h + (BM_FIRST_FREE_WORD >> 2)] = first >>> 5;
    u32[h + (BM_MAGIC >> 2)] = BM_MAGIC_VALUE;
  }

  /**
   * Manages the whole pages of one more range, aligned inward as in `init`.
   * @throws AllocError `InvalidParam` when the state is not formatted, or the range is not
   *   inside the window or holds no whole page; `MemoryOverlap` when one of its pages is
   *   already managed
   */
  addMemory(start: number, size: number): void {
    const u32 = this.u32;
    const h = this.header;
    if (u32[h + (BM_MAGIC >> 2)] !== BM_MAGIC_VALUE) {
      throw new AllocError('InvalidParam', `page allocator state at ${hex(this.stateOffset)} is not formatted; call init first`);
    }
    this.checkMemoryRange(start, size, 'addMemory');
    const first = (alignUp(start, this.pageSize) - this.windowStart) / this.pageSize;
    const end = (alignDown(start + size, this.pageSize) - this.windowStart) / this.pageSize;
    const overlap = this.findBit(this.managed, first, end, 0);
    if (overlap >= 0) {
      throw new AllocError(
        'MemoryOverlap',
        `memory range ${hex(start)}..${hex(start + size)} overlaps managed memory: the page at ` + `${hex(this.addressOf(overlap))} is already managed`,
      );
    }
    this.setBits(this.managed, first, end, true);
    u32[h + (BM_TOTAL_PAGES >> 2)] = u32[h + (BM_TOTAL_PAGES >> 2)]! + (end - first);
    this.lowerHint(first);
  }

  /**
   * Allocates `count` contiguous free pages whose first address is a multiple of
   * `alignBytes`, at the lowest such address.
   * @throws AllocError `InvalidParam` when `alignBytes` is not a power of two from `pageSize`
   *   to `MAX_ALIGN` or `count` is not a positive integer; `NoMemory` when no run fits
   */
  allocPages(count: number, alignBytes: number): number {
    const alignPages = this.alignPages(alignBytes);
    this.checkCount(count);
    const u32 = this.u32;
    const h = this.header;
    const limit = this.windowPages - count; // the last page a run can start at
    if (count <= u32[h + (BM_TOTAL_PAGES >> 2)]! - u32[h + (BM_USED_PAGES >> 2)]!) {
      const alignLow = alignPages - 1;
      // Window page p is at an aligned address when firstPageNumber + p ≡ 0 (mod alignPages).
      const phase = (alignPages - (this.firstPageNumber & alignLow)) & alignLow;
      // Below 32 pages the aligned pages fall on the same bits of every word: phase,
      // phase + alignPages, ... (32 is a multiple of alignPages).
      let alignMask = 0;
      if (alignPages < 32) {
        alignMask = 1 << phase;
        for (let shift = alignPages; shift < 32; shift <<= 1) alignMask |= alignMask << shift;
      }
      let from = this.advanceHint() << 5;
      for (;;) {
        const start = this.nextFreeAligned(from, limit, alignPages, phase, alignMask);
        if (start < 0) break;
        const blocker = count === 1 ? -1 : this.firstNotFree(start + 1, start + count);
        if (blocker < 0) {
          this.setBits(this.used, start, start + count, true);
          this.addUsedPages(count);
          return this.addressOf(start);
        }
        // Every run starting at or before the blocker contains it.
        from = blocker + 1;
      }
    }
    throw new AllocError(
      'NoMemory',
      `no run of ${count} free pages at a multiple of ${alignBytes} bytes: ` +
        `${this.availablePages()} of ${this.totalPages()} pages free, longest free run ` +
        `${this.largestFreeRun()} pages`,
    );
  }

  /**
   * Allocates the `count` pages starting at `address`.
   * @throws AllocError `InvalidParam` for a bad alignment or count (as `allocPages`), an
   *   address that is not a multiple of `alignBytes`, or pages that are not all managed;
   *   `NoMemory` when one of the pages is already allocated
   */
  allocPagesAt(address: number, count: number, alignBytes: number): number {
    this.alignPages(alignBytes);
    this.checkCount(count);
    this.checkAddressMultiple(address, alignBytes, 'the alignment');
    const first = this.managedPages(address, count, 'allocPagesAt');
    const taken = this.findBit(this.used, first, first + count, 0);
    if (taken >= 0) {
      throw new AllocError(
        'NoMemory',
        `cannot allocate ${count} pages at ${hex(address)}: the page at ` + `${hex(this.addressOf(taken))} is already allocated`,
      );
    }
    this.setBits(this.used, first, first + count, true);
    this.addUsedPages(count);
    return address;
  }

  /**
   * Frees the `count` pages at `address`. Every page is checked before any is freed, so a
   * double free changes nothing.
   * @throws AllocError `InvalidParam` for a count that is not a positive integer, an address
   *   that is not page-aligned, or pages that are not all managed; `NotAllocated` when one of
   *   the pages is not allocated
   */
  deallocPages(address: number, count: number): void {
    this.checkCount(count);
    this.checkAddressMultiple(address, this.pageSize, 'the page size');
    const first = this.managedPages(address, count, 'deallocPages');
    const free = this.findBit(this.used, first, first + count, ALL);
    if (free >= 0) {
      throw new AllocError('NotAllocated', `cannot free ${count} pages at ${hex(address)}: the page at ` + `${hex(this.addressOf(free))} is not allocated`);
    }
    this.setBits(this.used, first, first + count, false);
    this.addUsedPages(-count);
    this.lowerHint(first);
  }

  /** Managed pages. */
  totalPages(): number {
    return this.u32[this.header + (BM_TOTAL_PAGES >> 2)]!;
  }

  /** Allocated pages. */
  usedPages(): number {
    return this.u32[this.header + (BM_USED_PAGES >> 2)]!;
  }

  /** `totalPages() - usedPages()`. */
  availablePages(): number {
    return this.totalPages() - this.usedPages();
  }

  /** Pages in the longest run of free (managed, unallocated) pages; for statistics. */
  largestFreeRun(): number {
    const u32 = this.u32;
    let best = 0;
    let run = 0; // free pages running up to the current word
    for (let w = 0; w < this.words; w++) {
      const free = u32[this.managed + w]! & ~u32[this.used + w]!;
      if (free === ALL) {
        run += 32;
        continue;
      }
      if (free === 0) {
        if (run > best) best = run;
        run = 0;
        continue;
      }
      run += lowestBit(~free); // free pages at the bottom of the word end the run
      if (run > best) best = run;
      let x = free; // longest run inside the word: each step shortens every run by one
      let inside = 0;
      while (x !== 0) {
        x &= x >>> 1;
        inside++;
      }
      if (inside > best) best = inside;
      run = Math.clz32(~free); // free pages at the top start the next run
    }
    return Math.max(run, best);
  }

  /**
   * Verifies every invariant of the state (see the top of this file).
   * @throws AllocError `HeapCorrupted` naming the first violation found
   */
  check(): PageCheckReport {
    const u32 = this.u32;
    const h = this.header;
    const where = `page allocator state at ${hex(this.stateOffset)}`;
    const magic = u32[h + (BM_MAGIC >> 2)]!;
    if (magic !== BM_MAGIC_VALUE) {
      throw new AllocError('HeapCorrupted', `${where} is not formatted (magic ${hex(magic)})`);
    }
    const pageSize = u32[h + (BM_PAGE_SIZE >> 2)]!;
    const windowStart = u32[h + (BM_WINDOW_START >> 2)]!;
    const windowPages = u32[h + (BM_WINDOW_PAGES >> 2)]!;
    if (pageSize !== this.pageSize || windowStart !== this.windowStart || windowPages !== this.windowPages) {
      throw new AllocError(
        'HeapCorrupted',
        `${where} was formatted for ${windowPages} pages of ${pageSize} bytes at ` +
          `${hex(windowStart)}, not ${this.windowPages} pages of ${this.pageSize} bytes at ` +
          `${hex(this.windowStart)}`,
      );
    }
    const hint = u32[h + (BM_FIRST_FREE_WORD >> 2)]!;
    if (hint > this.words) {
      throw new AllocError('HeapCorrupted', `${where}: search hint ${hint} is past the last word ${this.words}`);
    }
    const tailBits = this.windowPages & 31;
    const tail = tailBits === 0 ? 0 : ALL << tailBits;
    let total = 0;
    let used = 0;
    for (let w = 0; w < this.words; w++) {
      const m = u32[this.managed + w]!;
      const u = u32[this.used + w]!;
      const stray = u & ~m;
      if (stray !== 0) {
        throw new AllocError('HeapCorrupted', `${where}: the page at ${hex(this.addressOf((w << 5) + lowestBit(stray)))} is allocated but not managed`);
      }
      if (w === this.words - 1 && (m & tail) !== 0) {
        throw new AllocError(
          'HeapCorrupted',
          `${where}: managed bits ${hex((m & tail) >>> 0)} of word ${w} are past the ` + `window's ${this.windowPages} pages`,
        );
      }
      if (w < hint && (m & ~u) !== 0) {
        throw new AllocError('HeapCorrupted', `${where}: search hint ${hint} skips the free page at ` + `${hex(this.addressOf((w << 5) + lowestBit(m & ~u)))}`);
      }
      total += popcount(m);
      used += popcount(u);
    }
    const totalPages = this.totalPages();
    const usedPages = this.usedPages();
    if (totalPages !== total || usedPages !== used) {
      throw new AllocError(
        'HeapCorrupted',
        `${where}: counters say ${totalPages} pages managed and ${usedPages} used; the bitmaps ` + `hold ${total} and ${used}`,
      );
    }
    return { totalPages: total, usedPages: used };
  }

  // --- helpers -------------------------------------------------------------------------------

  private addressOf(page: number): number {
    return this.windowStart + page * this.pageSize;
  }

  /** Checks an alignment and returns it in pages. */
  private alignPages(alignBytes: number): number {
    if (!isPowerOfTwo(alignBytes) || alignBytes < this.pageSize || alignBytes > MAX_ALIGN) {
      throw new AllocError(
        'InvalidParam',
        `alignment ${String(alignBytes)} is not a power-of-two multiple of the page size ` + `${this.pageSize}, at most ${MAX_ALIGN}`,
      );
    }
    return alignBytes / this.pageSize;
  }

  /** @throws AllocError `InvalidParam` unless `address` is a non-negative multiple of `multiple` */
  private checkAddressMultiple(address: number, multiple: number, what: string): void {
    if (!Number.isSafeInteger(address) || address < 0 || address % multiple !== 0) {
      throw new AllocError(
        'InvalidParam',
        `address ${typeof address === 'number' ? hex(address) : String(address)} is not a ` + `multiple of ${what} ${multiple}`,
      );
    }
  }

  /** Moves the used-page counter by `delta`. */
  private addUsedPages(delta: number): void {
    const usedIndex = this.header + (BM_USED_PAGES >> 2);
    this.u32[usedIndex] = this.u32[usedIndex]! + delta;
  }

  private checkCount(count: number): void {
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new AllocError('InvalidParam', `page count ${String(count)} is not a positive integer`);
    }
  }

  /** Checks a range given to `init` or `addMemory`: inside the window, at least one page. */
  private checkMemoryRange(start: number, size: number, what: string): void {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(size) || start < 0 || size < 0) {
      throw new AllocError('InvalidParam', `${what}: memory range start ${String(start)} size ${String(size)} is not a non-negative integer range`);
    }
    const end = start + size;
    if (start < this.windowStart || end > this.windowEnd) {
      throw new AllocError(
        'InvalidParam',
        `${what}: memory range ${hex(start)}..${hex(end)} is outside the page allocator's window ` + `${hex(this.windowStart)}..${hex(this.windowEnd)}`,
      );
    }
    if (alignDown(end, this.pageSize) <= alignUp(start, this.pageSize)) {
      throw new AllocError('InvalidParam', `${what}: memory range ${hex(start)}..${hex(end)} holds no whole page of ${this.pageSize} bytes`);
    }
  }

  /**
   * Returns the window page of `address` (page-aligned) after checking that its `count` pages
   * are all managed.
   */
  private managedPages(address: number, count: number, what: string): number {
    if (address < this.windowStart || address + count * this.pageSize > this.windowEnd) {
      throw new AllocError(
        'InvalidParam',
        `${what}: ${count} pages at ${hex(address)} are outside the page allocator's window ` + `${hex(this.windowStart)}..${hex(this.windowEnd)}`,
      );
    }
    const first = (address - this.windowStart) / this.pageSize;
    const unmanaged = this.findBit(this.managed, first, first + count, ALL);
    if (unmanaged >= 0) {
      throw new AllocError(
        'InvalidParam',
        `${what}: the page at ${hex(this.addressOf(unmanaged))} of the ${count} at ` + `${hex(address)} is not managed memory`,
      );
    }
    return first;
  }

  /**
   * First page in `[from, to)` (`from < to`) whose bit in the bitmap at word `base` is set
   * (`flip` 0) or clear (`flip` ALL); -1 when there is none.
   */
  private findBit(base: number, from: number, to: number, flip: number): number {
    const u32 = this.u32;
    const last = (to - 1) >>> 5;
    let w = from >>> 5;
    let x = (u32[base + w]! ^ flip) & (ALL << (from & 31));
    for (;;) {
      if (w === last) {
        x &= bitRange(0, ((to - 1) & 31) + 1);
        return x === 0 ? -1 : (w << 5) + lowestBit(x);
      }
      if (x !== 0) return (w << 5) + lowestBit(x);
      w++;
      x = u32[base + w]! ^ flip;
    }
  }

  /** First page in `[from, to)` (`from < to`) that is not free; -1 when all are free. */
  private firstNotFree(from: number, to: number): number {
    const u32 = this.u32;
    const managed = this.managed;
    const used = this.used;
    const last = (to - 1) >>> 5;
    let w = from >>> 5;
    let x = ~(u32[managed + w]! & ~u32[used + w]!) & (ALL << (from & 31));
    for (;;) {
      if (w === last) {
        x &= bitRange(0, ((to - 1) & 31) + 1);
        return x === 0 ? -1 : (w << 5) + lowestBit(x);
      }
      if (x !== 0) return (w << 5) + lowestBit(x);
      w++;
      x = ~(u32[managed + w]! & ~u32[used + w]!); // 0 for a fully free word: one comparison
    }
  }

  /**
   * Lowest free page `p` with `from <= p <= limit` and `p ≡ phase (mod alignPages)`; -1 when
   * there is none. `alignMask` has the aligned bits of a word when `alignPages < 32`.
   */
  private nextFreeAligned(from: number, limit: number, alignPages: number, phase: number, alignMask: number): number {
    const u32 = this.u32;
    const managed = this.managed;
    const used = this.used;
    let page = from + ((phase - from) & (alignPages - 1));
    if (page > limit) return -1;
    if (alignPages >= 32) {
      // At most one candidate per word: test its bit, then jump a whole alignment.
      for (; page <= limit; page += alignPages) {
        const w = page >>> 5;
        if ((u32[managed + w]! & ~u32[used + w]! & (1 << (page & 31))) !== 0) return page;
      }
      return -1;
    }
    const last = limit >>> 5;
    let w = page >>> 5;
    let x = u32[managed + w]! & ~u32[used + w]! & alignMask & (ALL << (page & 31));
    for (;;) {
      if (x !== 0) {
        const found = (w << 5) + lowestBit(x);
        return found <= limit ? found : -1;
      }
      if (w === last) return -1;
      w++;
      x = u32[managed + w]! & ~u32[used + w]! & alignMask; // full or unmanaged word: one test
    }
  }

  /** Sets or clears the bits of pages `[from, to)` (`from < to`) in the bitmap at word `base`. */
  private setBits(base: number, from: number, to: number, set: boolean): void {
    const u32 = this.u32;
    const firstWord = from >>> 5;
    const lastWord = (to - 1) >>> 5;
    for (let w = firstWord; w <= lastWord; w++) {
      const mask = bitRange(w === firstWord ? from & 31 : 0, w === lastWord ? ((to - 1) & 31) + 1 : 32);
      const i = base + w;
      u32[i] = set ? u32[i]! | mask : u32[i]! & ~mask;
    }
  }

  /** Moves the hint past words with no free page, stores it and returns it. */
  private advanceHint(): number {
    const u32 = this.u32;
    const index = this.header + (BM_FIRST_FREE_WORD >> 2);
    let w = u32[index]!;
    while (w < this.words && (u32[this.managed + w]! & ~u32[this.used + w]!) === 0) w++;
    u32[index] = w;
    return w;
  }

  /** Lowers the hint to the word of `page`, which may now be free. */
  private lowerHint(page: number): void {
    const index = this.header + (BM_FIRST_FREE_WORD >> 2);
    const w = page >>> 5;
    if (w < this.u32[index]!) this.u32[index] = w;
  }
}
