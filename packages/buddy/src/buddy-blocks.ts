/**
 * The buddy algorithm over the shared state: cutting pools into naturally aligned blocks,
 * splitting a block to serve a smaller order, merging a freed block with its buddy, and the
 * counters. The byte face (`BuddyAllocator`) and the page face (`BuddyPageAllocator`) are
 * thin layers over it, so both can work on one heap.
 *
 * A block of order k at address b has its buddy at `b ^ 2^k`: blocks are aligned to their
 * size in absolute addresses, so the pair forms the block of order k + 1 at `b & ~2^k`.
 *
 * Invariants kept here (besides the order map's and the lists', see their files):
 * 1. The blocks of a pool tile its block area exactly.
 * 2. Two free buddies of the same order never both stay free: `free` merges at once, and
 *    the blocks `addPool` cuts are maximal, so no two of them are buddies (at `MAX_ORDER`
 *    nothing merges).
 * 3. A free block's `FB_MAP_START` word is its pool's mapStart.
 * 4. The counters equal what a walk of the blocks finds (`heap-check.ts` verifies all).
 */

import { AllocError, hex, type HeapMemory } from '@heaplab/core';

import { FreeLists } from './free-lists.js';
import { entryIndex, startOrder, writeLive } from './order-map.js';
import { alignmentOrder, MAX_ORDER, MIN_ORDER } from './orders.js';
import { Pools } from './pools.js';
import {
  BUDDY_MAGIC,
  FB_MAP_START,
  FREE,
  PAGES,
  ST_LIVE,
  ST_MAGIC,
  ST_PEAK,
  ST_REQUESTED,
  ST_USED,
  START,
  STATE_BYTES,
} from './state-layout.js';

/** One thread's view of a buddy heap's blocks. Not thread-safe: callers hold the heap lock. */
export class BuddyBlocks {
  /** Byte view of the whole heap buffer (order maps are read through it). */
  readonly u8: Uint8Array;
  /** Word view of the whole heap buffer (control state and free-block links). */
  readonly u32: Uint32Array;
  /** The per-order free lists. */
  readonly lists: FreeLists;
  /** The pool table. */
  readonly pools: Pools;
  /** Where the control state starts in the buffer. */
  readonly stateOffset: number;
  /** The arena every pool lies in: `[arenaStart, arenaEnd)`. */
  readonly arenaStart: number;
  readonly arenaEnd: number;
  private readonly sMagic: number;
  private readonly sUsed: number;
  private readonly sPeak: number;
  private readonly sRequested: number;
  private readonly sLive: number;

  /**
   * Binds to the state at `stateOffset` (`BUDDY_STATE_BYTES` long) for the arena
   * `[arenaStart, arenaEnd)`; does not format it.
   * @throws AllocError `InvalidParam` when `stateBytes` is below `BUDDY_STATE_BYTES` or the state
   *   is not 8-aligned
   */
  constructor(memory: HeapMemory, stateOffset: number, stateBytes: number, arenaStart: number, arenaEnd: number) {
    if (stateBytes < STATE_BYTES || stateOffset % 8 !== 0) {
      throw new AllocError(
        'InvalidParam',
        `buddy backend needs ${STATE_BYTES} bytes of 8-aligned state; got ${stateBytes} at ${hex(stateOffset)}`,
      );
    }
    this.u8 = memory.u8;
    this.u32 = memory.u32;
    this.stateOffset = stateOffset;
    this.arenaStart = arenaStart;
    this.arenaEnd = arenaEnd;
    this.lists = new FreeLists(memory.u32, stateOffset);
    this.pools = new Pools(memory.u8, memory.u32, stateOffset, arenaStart, arenaEnd);
    const base = stateOffset >>> 2;
    this.sMagic = base + (ST_MAGIC >>> 2);
    this.sUsed = base + (ST_USED >>> 2);
    this.sPeak = base + (ST_PEAK >>> 2);
    this.sRequested = base + (ST_REQUESTED >>> 2);
    this.sLive = base + (ST_LIVE >>> 2);
  }

  // --- memory given to the heap ------------------------------------------------------------

  /**
   * Formats the state with `[start, start + size)` as the only pool. The range is checked
   * first, so a refused `init` leaves the buffer as it was.
   * @throws AllocError `InvalidParam` for a range outside the arena or too small
   */
  format(start: number, size: number): void {
    this.pools.validate(start, size, 'init');
    const first = this.stateOffset >>> 2;
    this.u32.fill(0, first, first + (STATE_BYTES >>> 2));
    this.addPool(start, size, 'init');
    this.u32[this.sMagic] = BUDDY_MAGIC;
  }

  /**
   * Adds `[start, start + size)` to a formatted heap as another pool with its own order map:
   * `addMemory` of both faces.
   * @throws AllocError `InvalidParam` before `format`, or for a range outside the arena or
   *   too small; `NoMemory` when the pool table is full
   */
  addMemory(start: number, size: number): void {
    if (!this.isFormatted()) {
      throw new AllocError('InvalidParam', 'buddy addMemory: the heap is not formatted; call init first');
    }
    this.addPool(start, size, 'addMemory');
  }

  /** True once `format` has run on this state. */
  isFormatted(): boolean {
    return this.u32[this.sMagic] === BUDDY_MAGIC;
  }

  /**
   * Adds a pool and cuts its block area, left to right, into the largest blocks that are
   * aligned to their size and fit: an unaligned or odd-sized range becomes a few blocks of
   * decreasing, then increasing, orders.
   * @throws AllocError `InvalidParam` for a range outside the arena or too small; `NoMemory`
   *   when the pool table is full
   */
  addPool(start: number, size: number, what: string): void {
    const pools = this.pools;
    const pool = pools.add(start, size, what);
    const mapStart = pools.mapStart(pool);
    const end = pools.end(pool);
    for (let block = pools.blocksStart(pool); block < end; ) {
      let order = alignmentOrder(block);
      const fits = 31 - Math.clz32(end - block);
      if (fits < order) order = fits;
      if (order > MAX_ORDER) order = MAX_ORDER;
      this.pushFree(block, order, mapStart);
      block += 1 << order;
    }
  }

  // --- split and merge -----------------------------------------------------------------------

  /**
   * Takes a free block of exactly `order`: the first block of the smallest non-empty list
   * from `order` up, split down with each upper half freed. Marks it live: a page-run block
   * when `pages`, else a byte block with `slack` unused bytes. Returns it, or 0 when no list
   * from `order` up has a block. Does not count it (`account` does).
   */
  take(order: number, slack: number, pages: boolean): number {
    const lists = this.lists;
    const found = lists.smallestAtLeast(order);
    if (found < 0) return 0;
    const block = lists.pop(found);
    const mapStart = this.u32[(block + FB_MAP_START) >>> 2]!;
    for (let half = found - 1; half >= order; half--) this.pushFree(block + (1 << half), half, mapStart);
    const entry = entryIndex(mapStart, block);
    if (pages) this.u8[entry] = PAGES | order;
    else writeLive(this.u8, entry, order, slack);
    return block;
  }

  /**
   * Frees the live block at `block` of `order` in the pool `[mapStart, end)` and merges it
   * with its buddy as long as the buddy is free and of the same order. Does not count it.
   */
  give(block: number, order: number, mapStart: number, end: number): void {
    const u8 = this.u8;
    u8[entryIndex(mapStart, block)] = 0;
    let start = block;
    let k = order;
    while (k < MAX_ORDER) {
      const buddy = (start ^ (1 << k)) >>> 0;
      // Outside the pool there is no buddy; inside its map region the entries are 0.
      if (buddy < mapStart || buddy >= end) break;
      const buddyEntry = entryIndex(mapStart, buddy);
      if (u8[buddyEntry] !== (FREE | k)) break;
      this.lists.remove(buddy, k);
      u8[buddyEntry] = 0;
      if (buddy < start) start = buddy;
      k++;
    }
    this.pushFree(start, k, mapStart);
  }

  /**
   * Shrinks the live block at `block` from `order` to `newOrder` by freeing its upper halves.
   * None can merge: each one's buddy is the part still live. The caller rewrites the block's
   * start entry.
   */
  splitOffUpperHalves(block: number, order: number, newOrder: number, mapStart: number): void {
    for (let half = order - 1; half >= newOrder; half--) this.pushFree(block + (1 << half), half, mapStart);
  }

  /**
   * Grows the live block at `block` from `order` to `newOrder` by taking its buddies above,
   * which must be free blocks of orders `order` to `newOrder - 1`. Returns false, changing
   * nothing, when the block is not aligned to the new size or one buddy is not free whole.
   * The caller rewrites the block's start entry.
   */
  absorbUpperBuddies(block: number, order: number, newOrder: number, mapStart: number, end: number): boolean {
    if (newOrder > MAX_ORDER || block % (1 << newOrder) !== 0) return false;
    const u8 = this.u8;
    for (let k = order; k < newOrder; k++) {
      const buddy = block + (1 << k);
      if (buddy >= end || u8[entryIndex(mapStart, buddy)] !== (FREE | k)) return false;
    }
    for (let k = order; k < newOrder; k++) {
      const buddy = block + (1 << k);
      this.lists.remove(buddy, k);
      u8[entryIndex(mapStart, buddy)] = 0;
    }
    return true;
  }

  /**
   * The start of the block holding `address` (16-aligned, in the block area of the pool
   * `[mapStart, ...)` that starts its blocks at `blocksStart`). The block of order k holding
   * it starts at `address` rounded down to 2^k; trying k upwards, the first rounding that
   * lands on a start entry whose block reaches past `address` is it. Returns 0 only when the
   * map is damaged.
   */
  blockHolding(address: number, mapStart: number, blocksStart: number): number {
    const u8 = this.u8;
    for (let k = MIN_ORDER; k <= MAX_ORDER; k++) {
      const candidate = address - (address % (1 << k));
      if (candidate < blocksStart) break;
      const code = u8[entryIndex(mapStart, candidate)]!;
      if ((code & START) !== 0 && candidate + (1 << startOrder(code)) > address) return candidate;
    }
    return 0;
  }

  /**
   * Takes the block `target` of `order` out of the free block `holder` that contains it,
   * splitting `holder` down and freeing every half that does not hold `target`, and marks it
   * as a page-run block.
   */
  takePagesAt(target: number, order: number, holder: number, mapStart: number): void {
    const u8 = this.u8;
    let block = holder;
    let k = startOrder(u8[entryIndex(mapStart, holder)]!);
    this.lists.remove(holder, k);
    while (k > order) {
      k--;
      const upper = block + (1 << k);
      if (target >= upper) {
        this.pushFree(block, k, mapStart);
        block = upper;
      } else {
        this.pushFree(upper, k, mapStart);
      }
    }
    u8[entryIndex(mapStart, target)] = PAGES | order;
  }

  /** Marks `block` as a free block of `order` and puts it on its list. */
  pushFree(block: number, order: number, mapStart: number): void {
    this.u8[entryIndex(mapStart, block)] = FREE | order;
    this.lists.push(block, order, mapStart);
  }

  // --- counters ------------------------------------------------------------------------------

  /** The control-state word at byte offset `field` (one of the `ST_*` counters). */
  field(field: number): number {
    return this.u32[(this.stateOffset + field) >>> 2]!;
  }

  /** Adds to the used and requested bytes and the live-block count; raises the peak. */
  account(usedDelta: number, requestedDelta: number, liveDelta: number): void {
    const u32 = this.u32;
    const used = u32[this.sUsed]! + usedDelta;
    u32[this.sUsed] = used;
    if (used > u32[this.sPeak]!) u32[this.sPeak] = used;
    u32[this.sRequested] = u32[this.sRequested]! + requestedDelta;
    u32[this.sLive] = u32[this.sLive]! + liveDelta;
  }
}
