/**
 * The byte face of the buddy heap: the `Backend` that `GlobalAllocator` drives. A request of
 * `size` bytes aligned to `align` takes a block of order max(ceil(log2 size), log2 align),
 * at least 16 bytes; blocks are aligned to their size, so alignment up to the block size
 * costs nothing and a larger one only raises the order.
 *
 * Blocks carry no header: `free(address)` finds the order in the pool's order map, which
 * also tells a live block's start from anything else. The size asked for is kept as the
 * block's slack in the map, and the alignment asked for beside it (see `layout.ts`),
 * so requested bytes are exact and `dealloc` checks a layout exactly, at no memory cost.
 * (The one exception to "order = max(ceil(log2 size), log2 align)": 0 or 1 byte aligned to
 * 16 takes 32 bytes, see `orderFor`.)
 */

import {
  type Backend,
  type BackendContext,
  type BackendRepair,
  type BackendStats,
  type BlockLayout,
  type CheckReport,
  type HeapRegion,
  hex,
  log2,
  notAllocated,
  type RepairCause,
  type StatsTable,
} from '@heaplab/core/backend';

import { BuddyBlocks } from './blocks.js';
import { checkBuddyHeap } from './check.js';
import { ALIGN_BASE_LOG, corrupt, UNIT_BYTES } from './layout.js';
import { entryIndex, liveDigitsValid, liveOrder, readAlignLog, readSlack } from './order-map.js';
import { MAX_BLOCK_BYTES, MAX_ORDER, MIN_ORDER, orderFor } from './orders.js';
import type { Pools } from './pools.js';
import { recoverBuddyHeap } from './recover.js';
import { buddyClassStats, walkBuddyHeap } from './walk.js';

/**
 * One thread's handle on a buddy heap's bytes. Create it through `buddyBackend.create`, or
 * directly over a context; every instance over the same buffer and state offset sees and
 * edits the same heap. Not thread-safe: call it under the heap lock.
 */
export class BuddyAllocator implements Backend {
  /** The blocks and counters, shared with any `BuddyPageAllocator` over the same state. */
  readonly blocks: BuddyBlocks;
  private readonly u8: Uint8Array;
  private readonly pools: Pools;
  private readonly checked: boolean;

  /**
   * Makes a handle over `ctx`'s shared state; does not format it (`init` does).
   * @throws AllocError `InvalidParam` when the state area is smaller than `BUDDY_STATE_BYTES` or
   *   misaligned
   */
  constructor(ctx: BackendContext) {
    this.blocks = new BuddyBlocks(ctx);
    this.u8 = ctx.memory.u8;
    this.pools = this.blocks.pools;
    this.checked = ctx.checked;
  }

  // --- memory given to the heap ------------------------------------------------------------

  /**
   * Formats the shared state with `[start, start + size)` as the first pool: its order map
   * first, then naturally aligned blocks.
   * @throws AllocError `InvalidParam` for a range outside the arena or too small for a map
   *   and one 16-byte block
   */
  init(start: number, size: number): void {
    this.blocks.format(start, size);
  }

  /**
   * Adds `[start, start + size)` as another pool with its own order map. Core has checked it
   * against its pool table and records it once this returns.
   * @throws AllocError `InvalidParam` before `init`, or for a range outside the arena or too
   *   small
   */
  addMemory(start: number, size: number): void {
    this.blocks.addMemory(start, size);
  }

  // --- blocks --------------------------------------------------------------------------------

  /**
   * A block of at least `size` bytes at a multiple of `align`, or 0 when no free block is
   * large enough. The size and the alignment are recorded in the order map.
   * @throws AllocError `HeapCorrupted` when the free list it takes from is damaged
   */
  allocate(size: number, align: number): number {
    if (size > MAX_BLOCK_BYTES) return 0;
    let alignLog = log2(align);
    if (alignLog < ALIGN_BASE_LOG) alignLog = ALIGN_BASE_LOG;
    const order = orderFor(size, alignLog);
    if (order > MAX_ORDER) return 0;
    const bytes = 1 << order;
    const block = this.blocks.takeBytes(order, bytes - size, alignLog);
    // Blocks have no header: what a block takes is what it grants.
    if (block !== 0) this.blocks.counters.allocated(bytes, size, bytes);
    return block;
  }

  /**
   * Frees the block at `address` and merges it with its free buddies.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block;
   *   `HeapCorrupted` when a buddy's links are damaged
   */
  release(address: number): void {
    const entry = this.liveEntry(address);
    const u8 = this.u8;
    const order = liveOrder(u8[entry]!);
    if (this.checked) this.checkDigits(address, entry, order);
    const bytes = 1 << order;
    const slack = readSlack(u8, entry, order);
    const pools = this.pools;
    this.blocks.give(address, order, pools.foundMap, pools.foundEnd);
    this.blocks.counters.released(bytes, bytes - slack, bytes);
  }

  /**
   * Bytes usable at `address`: its whole block.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  usableSize(address: number): number {
    return 1 << liveOrder(this.u8[this.liveEntry(address)]!);
  }

  /**
   * The size asked for when the block was made (or last resized).
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  requestedSize(address: number): number {
    const entry = this.liveEntry(address);
    const order = liveOrder(this.u8[entry]!);
    return (1 << order) - readSlack(this.u8, entry, order);
  }

  /**
   * The layout the block at `address` may be freed with: exactly the size asked for and
   * exactly the alignment it was allocated with (at least 8), both kept in the order map.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  blockLayout(address: number): BlockLayout {
    const entry = this.liveEntry(address);
    const order = liveOrder(this.u8[entry]!);
    const requested = (1 << order) - readSlack(this.u8, entry, order);
    const align = 1 << readAlignLog(this.u8, entry, order);
    return { minSize: requested, maxSize: requested, minAlign: align, maxAlign: align };
  }

  /**
   * Resizes the block at `address` without moving it, keeping its alignment: a smaller order
   * frees the upper halves; a larger one takes the buddies above when they are all free and
   * the block is aligned to the new size. Returns false, changing nothing, when growing is
   * not possible.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block;
   *   `HeapCorrupted` when a list it edits is damaged
   */
  resizeInPlace(address: number, size: number): boolean {
    const entry = this.liveEntry(address);
    if (size > MAX_BLOCK_BYTES) return false;
    const u8 = this.u8;
    const blocks = this.blocks;
    const mapStart = this.pools.foundMap;
    const order = liveOrder(u8[entry]!);
    if (this.checked) this.checkDigits(address, entry, order);
    const oldBytes = 1 << order;
    const oldRequested = oldBytes - readSlack(u8, entry, order);
    const alignLog = readAlignLog(u8, entry, order);
    const newOrder = orderFor(size, alignLog);
    const newBytes = 1 << newOrder;
    if (newOrder < order) {
      blocks.shrinkLive(address, order, newOrder, newBytes - size, alignLog, mapStart);
    } else if (newOrder > order) {
      if (!blocks.growLive(address, order, newOrder, newBytes - size, alignLog, mapStart, this.pools.foundEnd)) return false;
    } else {
      blocks.relabelLive(entry, order, newBytes - size, alignLog);
    }
    blocks.counters.resized(newBytes - oldBytes, size - oldRequested, newBytes - oldBytes);
    return true;
  }

  /**
   * The entry index of the live byte block at `address` (its pool's bounds left in
   * `pools.found*`); throws when there is none.
   */
  private liveEntry(address: number): number {
    const pools = this.pools;
    if (pools.find(address) >= 0 && (address & (UNIT_BYTES - 1)) === 0) {
      const entry = entryIndex(pools.foundMap, address);
      if (liveOrder(this.u8[entry]!) >= 0) return entry;
    }
    throw notAllocated('buddy', address, 'not the start of a live block (double free, interior pointer, or never allocated)');
  }

  /** Checked mode: the digits of the live block at `address` are valid for its order. */
  private checkDigits(address: number, entry: number, order: number): void {
    if (order > MIN_ORDER && !liveDigitsValid(this.u8, entry, order)) {
      throw corrupt(`live block ${hex(address)} of order ${order} has invalid size and alignment digits in its order map`);
    }
  }

  // --- accounting ----------------------------------------------------------------------------

  /** Bytes of every pool's block area: what `usedBytes` reaches when every byte is live. */
  totalBytes(): number {
    return this.blocks.counters.totalBytes;
  }

  /** Sizes of live blocks (page runs included). */
  usedBytes(): number {
    return this.blocks.counters.usedBytes;
  }

  /**
   * Core's counters as buddy allocators report them: bytes requested, bytes handed out (whole
   * blocks: `grantedBytes` equals `usedBytes`, there are no headers) and the total.
   * `metadataBytes` is the order maps with their padding; `freeBlocks` the lengths of the
   * free lists (core's free-block counter is not kept, see `layout.ts`); `largestFreeBlock`
   * is the block of the largest non-empty order, which `allocate(size, 8)` takes at once.
   */
  stats(): BackendStats {
    const lists = this.blocks.lists;
    const largest = lists.largest();
    return {
      ...this.blocks.counters.values(),
      peakUsedSampled: false,
      largestFreeBlock: largest < 0 ? 0 : 2 ** largest,
      freeBlocks: lists.total(),
    };
  }

  /**
   * Walks every pool and every free list and verifies every invariant (`check.ts`).
   * @throws AllocError `HeapCorrupted` naming the first violation and its address
   */
  check(): CheckReport {
    return checkBuddyHeap(this.blocks);
  }

  /**
   * Reports every pool's order map and every block in address order (`walk.ts`); called
   * under the heap lock.
   * @throws AllocError `HeapCorrupted` when a pool or an order map is broken
   */
  walk(visit: (region: HeapRegion) => void): void {
    walkBuddyHeap(this.blocks, visit);
  }

  /**
   * The "orders" table: free and live blocks per order (`walk.ts`).
   * @throws AllocError `HeapCorrupted` when a pool or an order map is broken
   */
  classStats(): StatsTable[] {
    return buddyClassStats(this.blocks);
  }

  /**
   * Rebuilds the free lists and counters from the order maps after a thread died holding the
   * heap lock (see "What a dead thread leaves" in `layout.ts` and `recover.ts`).
   * @throws AllocError `HeapCorrupted` when a pool's bounds or an order map are broken too
   */
  recover(_cause: RepairCause): BackendRepair {
    return recoverBuddyHeap(this.blocks);
  }
}
