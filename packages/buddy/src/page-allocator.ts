/**
 * The page face of the buddy heap: core's `PageAllocator` (ArceOS's, 4 KiB pages) over the
 * same shared blocks as the byte face, so a slab layer can take its pages from buddy while
 * byte allocations share the heap.
 *
 * A run of `count` pages at address `a` is held as the blocks of its decomposition: from
 * `a`, repeatedly the largest block aligned to its size that fits in what is left of the run.
 * `allocPages` takes one block of the next power of two (or of the alignment, if larger) and
 * frees its tail beyond the run, so a run wastes nothing; `allocPagesAt` carves the
 * decomposition's blocks out of the free blocks holding them; `deallocPages` frees them, and
 * they merge back. Run blocks are marked PAGES in the order map, so the byte face refuses to
 * free them and this face refuses byte blocks.
 *
 * The page face keeps no state of its own: its runs are PAGES blocks of the shared order
 * map, so the byte face's `recover` rebuilds them too (see "What a dead thread leaves" in
 * `layout.ts` for the order of its stores). Its callers serialise it with a lock of
 * their own; when that lock's holder dies, the repair is `BuddyAllocator.recover` over the
 * same state.
 */

import type { PageAllocator } from '@heaplab/core';
import { AllocError, type BackendContext, hex, isPowerOfTwo, log2, MAX_ALIGN, PAGE_SIZE } from '@heaplab/core/backend';

import { BuddyBlocks } from './blocks.js';
import { FREE, KIND_MASK, PAGES } from './layout.js';
import { entryIndex, startOrder } from './order-map.js';
import { largestBlockAt, MAX_BLOCK_BYTES, MAX_ORDER, orderForSize, PAGE_ORDER } from './orders.js';
import type { Pools } from './pools.js';

function checkCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new AllocError('InvalidParam', `page count ${String(count)} is not a positive integer`);
  }
}

/** Checks a page alignment and returns its order. */
function alignOrder(alignBytes: number): number {
  if (!isPowerOfTwo(alignBytes) || alignBytes < PAGE_SIZE || alignBytes > MAX_ALIGN) {
    throw new AllocError('InvalidParam', `alignment ${String(alignBytes)} is not a power-of-two multiple of the page size ${PAGE_SIZE}, at most ${MAX_ALIGN}`);
  }
  return log2(alignBytes);
}

/**
 * Whole pages from a buddy heap. Every instance over the same buffer and state offset (and
 * any `BuddyAllocator` there) shares one heap. Not thread-safe: callers hold a lock around
 * every call.
 */
export class BuddyPageAllocator implements PageAllocator {
  /** Bytes per page: 4 KiB. */
  readonly pageSize = PAGE_SIZE;
  /** The blocks and counters, shared with the byte face over the same state. */
  readonly blocks: BuddyBlocks;
  private readonly u8: Uint8Array;
  private readonly pools: Pools;

  /**
   * Makes a handle over the shared state of `source`: a backend context, or the blocks of a
   * `BuddyAllocator` (`allocator.blocks`) to serve pages from that allocator's heap. Does not
   * format it (`init` does).
   * @throws AllocError `InvalidParam` when a context's state area is smaller than
   *   `BUDDY_STATE_BYTES` or misaligned
   */
  constructor(source: BackendContext | BuddyBlocks) {
    this.blocks = source instanceof BuddyBlocks ? source : new BuddyBlocks(source);
    this.u8 = this.blocks.u8;
    this.pools = this.blocks.pools;
  }

  /**
   * Formats the heap with `[start, start + size)` as its first pool (as `BuddyAllocator.init`).
   * The pool is core's to record, as for a heap: whoever drives this face over a bare context
   * records it in the context's pool table once this returns (the test kit's `recordPool`).
   * @throws AllocError `InvalidParam` for a range outside the arena or too small
   */
  init(start: number, size: number): void {
    this.blocks.format(start, size);
  }

  /**
   * Adds a pool (as `BuddyAllocator.addMemory`), to be recorded in core's pool table as
   * `init`'s is.
   * @throws AllocError `InvalidParam` before `init`, or for a range outside the arena or too
   *   small
   */
  addMemory(start: number, size: number): void {
    this.blocks.addMemory(start, size);
  }

  /**
   * Allocates `count` contiguous pages at a multiple of `alignBytes`.
   * @throws AllocError `InvalidParam` when `alignBytes` is not a power-of-two multiple of the
   *   page size (at most `MAX_ALIGN`) or `count` is not a positive integer; `NoMemory` when no
   *   free block is large enough
   */
  allocPages(count: number, alignBytes: number): number {
    const alignment = alignOrder(alignBytes);
    checkCount(count);
    const bytes = count * PAGE_SIZE;
    if (bytes <= MAX_BLOCK_BYTES) {
      let order = orderForSize(bytes);
      if (alignment > order) order = alignment;
      const block = order <= MAX_ORDER ? this.blocks.takeRun(order, bytes) : 0;
      if (block !== 0) {
        // Counted as the blocks of its decomposition, as deallocPages frees it.
        const end = block + bytes;
        for (let at = block, k = 0; at < end; at += 2 ** k) {
          k = largestBlockAt(at, end);
          this.blocks.counters.allocated(2 ** k, 2 ** k, 2 ** k);
        }
        return block;
      }
    }
    throw new AllocError(
      'NoMemory',
      `no free block for ${count} pages at a multiple of ${alignBytes} bytes: ${this.availablePages()} of ` +
        `${this.totalPages()} pages free, the largest free block is ${this.largestFreePages()} pages`,
    );
  }

  /**
   * Allocates the `count` pages starting at `address`, splitting the free blocks that hold
   * them. Every page is checked before any is taken.
   * @throws AllocError `InvalidParam` for a bad alignment or count (as `allocPages`), an
   *   address that is not a multiple of `alignBytes`, or pages outside the heap's block areas;
   *   `NoMemory` when one of the pages is not free
   */
  allocPagesAt(address: number, count: number, alignBytes: number): number {
    alignOrder(alignBytes);
    checkCount(count);
    if (!Number.isSafeInteger(address) || address < 0 || address % alignBytes !== 0) {
      throw new AllocError(
        'InvalidParam',
        `address ${typeof address === 'number' ? hex(address) : String(address)} is not a multiple of the alignment ${alignBytes}`,
      );
    }
    this.managedPool(address, count, 'allocPagesAt');
    const mapStart = this.pools.foundMap;
    const blocksStart = this.pools.foundBlocks;
    const end = address + count * PAGE_SIZE;
    const blocks = this.blocks;
    const u8 = this.u8;
    // A fully free block of the decomposition lies inside one free block (two free halves of
    // one block would have merged), so it suffices that the block holding its start is free
    // and at least as large.
    for (let at = address, order = 0; at < end; at += 2 ** order) {
      order = largestBlockAt(at, end);
      const holder = blocks.blockHolding(at, mapStart, blocksStart);
      const code = holder === 0 ? 0 : u8[entryIndex(mapStart, holder)]!;
      if ((code & KIND_MASK) !== FREE || startOrder(code) < order) {
        throw new AllocError('NoMemory', `cannot allocate ${count} pages at ${hex(address)}: the ${2 ** order} bytes at ${hex(at)} are not all free`);
      }
    }
    // One block at a time, each counted as soon as it is taken: a thread that dies between
    // two leaves the blocks taken so far live (its run half-made), every count exact.
    for (let at = address, order = 0; at < end; at += 2 ** order) {
      order = largestBlockAt(at, end);
      blocks.takePagesAt(at, order, blocks.blockHolding(at, mapStart, blocksStart), mapStart);
      blocks.counters.allocated(2 ** order, 2 ** order, 2 ** order);
    }
    return address;
  }

  /**
   * Frees the `count` pages at `address`, which must be (the start of) a run from
   * `allocPages` or `allocPagesAt`. Every block is checked before any is freed, so a double
   * free changes nothing.
   * @throws AllocError `InvalidParam` for a count that is not a positive integer, an address
   *   that is not page-aligned, or pages outside the heap's block areas; `NotAllocated` when
   *   the pages are not a run's blocks
   */
  deallocPages(address: number, count: number): void {
    checkCount(count);
    if (!Number.isSafeInteger(address) || address < 0 || address % PAGE_SIZE !== 0) {
      throw new AllocError(
        'InvalidParam',
        `address ${typeof address === 'number' ? hex(address) : String(address)} is not a multiple of the page size ${PAGE_SIZE}`,
      );
    }
    this.managedPool(address, count, 'deallocPages');
    const mapStart = this.pools.foundMap;
    const poolEnd = this.pools.foundEnd;
    const end = address + count * PAGE_SIZE;
    const u8 = this.u8;
    for (let at = address, order = 0; at < end; at += 2 ** order) {
      order = largestBlockAt(at, end);
      if (u8[entryIndex(mapStart, at)] !== (PAGES | order)) {
        throw new AllocError(
          'NotAllocated',
          `cannot free ${count} pages at ${hex(address)}: ${hex(at)} does not start an allocated ${2 ** order}-byte block of pages`,
        );
      }
    }
    // One give per block, each counted at once: a thread that dies between two leaves the
    // rest of the run live (recovery keeps it), every count exact.
    const blocks = this.blocks;
    for (let at = address, order = 0; at < end; at += 2 ** order) {
      order = largestBlockAt(at, end);
      blocks.give(at, order, mapStart, poolEnd);
      blocks.counters.released(2 ** order, 2 ** order, 2 ** order);
    }
  }

  /** Pages at page-aligned addresses inside the block areas. */
  totalPages(): number {
    return this.pools.totalPages();
  }

  /** Pages not free: held by page runs or byte blocks. `totalPages() - availablePages()`. */
  usedPages(): number {
    return this.totalPages() - this.availablePages();
  }

  /** Pages inside free blocks: what `allocPages(1, PAGE_SIZE)` could take one by one. */
  availablePages(): number {
    const lists = this.blocks.lists;
    let pages = 0;
    for (let order = PAGE_ORDER; order <= MAX_ORDER; order++) pages += lists.length(order) * 2 ** (order - PAGE_ORDER);
    return pages;
  }

  /** Pages in the largest free block (0 when no free block holds a whole page). */
  largestFreePages(): number {
    const largest = this.blocks.lists.largest();
    return largest < PAGE_ORDER ? 0 : 2 ** (largest - PAGE_ORDER);
  }

  /**
   * Finds the pool whose block area holds all `count` pages from `address` (its bounds in
   * `pools.found*`).
   * @throws AllocError `InvalidParam` when there is none
   */
  private managedPool(address: number, count: number, what: string): void {
    const pool = this.pools.find(address);
    if (pool < 0 || address + count * PAGE_SIZE > this.pools.foundEnd) {
      throw new AllocError('InvalidParam', `${what}: ${count} pages at ${hex(address)} are not inside one of the buddy heap's block areas`);
    }
  }
}
