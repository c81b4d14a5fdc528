/**
 * The buddy heap's walk (`Backend.walk`) and its per-order table (`Backend.classStats`),
 * read from the order maps as `check()` and `recover()` read them: a pool's blocks are the
 * walk from its blocksStart that jumps from each start entry to the end of its block
 * (`layout.ts`). What each region is, with a drawn example, is in `docs/walks/buddy.md`.
 *
 * Per pool, in address order (pools sorted by where their maps start):
 *
 * ```text
 *  mapStart          blocksStart                                            end
 *  | metadata        | live "order 6" | free "order 6" | live "order 7"  ... |
 *    (order map and    each block whole: a block has no header, so its usable size
 *     its padding)     is the block and no slack is left as `header`
 * ```
 *
 * The bytes a pool's range loses to rounding its bounds to 16 (before mapStart, after end)
 * belong to no structure: the facade reports them as `untouched`, as it does the arena
 * outside every pool. A live block carries `requested` (its size minus the slack its digits
 * record; a page-run block, counted whole in the counters, its whole size), so the walk's
 * requested bytes add up to `stats().requestedBytes`.
 *
 * Bounded: every step moves at least 16 bytes forward inside a pool that lies in the arena,
 * and a start entry that starts no block fitting there, or live digits that do not call for
 * their block's order, is `HeapCorrupted`: the walk never reports a region past the pool.
 */

import { type HeapRegion, hex, type StatsTable } from '@heaplab/core/backend';

import type { BuddyBlocks } from './blocks.js';
import { corrupt, FREE, KIND_MASK, LIST_SLOTS, LIVE, LIVE_MIN, PAGES, START, UNIT_BYTES } from './layout.js';
import { entryIndex, liveDigitsValid, lowestOrderOf, readSlack, startOrder } from './order-map.js';
import { MAX_ORDER, MIN_ORDER } from './orders.js';

/** One block the map walk meets. */
interface WalkedBlock {
  address: number;
  order: number;
  /** The start entry's kind bits: FREE, PAGES, LIVE or LIVE_MIN. */
  kind: number;
  /** For a live block, the bytes it was asked for (a page-run block: all of it). */
  requested: number;
}

/** One pool's bounds, as the walk reads them from core's pool table. */
interface PoolBounds {
  index: number;
  mapStart: number;
  blocksStart: number;
  end: number;
}

/**
 * The pools of `blocks` in address order, each checked to lie in the arena with room for
 * its map and one block (a pool core recorded that does not was never formatted).
 * @throws AllocError `HeapCorrupted` for a pool outside the arena or too small
 */
function poolsInOrder(blocks: BuddyBlocks): PoolBounds[] {
  const { pools } = blocks;
  if (!blocks.isFormatted()) throw corrupt(`walk: the control state at ${hex(blocks.stateOffset)} is not formatted`);
  const found: PoolBounds[] = [];
  for (const index of pools.inAddressOrder()) {
    const bounds = { index, mapStart: pools.mapStart(index), blocksStart: pools.blocksStart(index), end: pools.end(index) };
    if (bounds.mapStart < blocks.arenaStart || bounds.end > blocks.arenaEnd || bounds.blocksStart + UNIT_BYTES > bounds.end) {
      throw corrupt(
        `walk: pool ${index} ${hex(bounds.mapStart)}..${hex(bounds.end)} (blocks from ${hex(bounds.blocksStart)}) is outside the arena or too small`,
      );
    }
    found.push(bounds);
  }
  return found;
}

/**
 * Calls `onBlock` for every block of `pool`, in address order.
 * @throws AllocError `HeapCorrupted` when an entry where a block must start starts none that
 *   fits there, or a live block's digits are invalid for its order
 */
function walkPool(blocks: BuddyBlocks, pool: PoolBounds, onBlock: (block: WalkedBlock) => void): void {
  const u8 = blocks.u8;
  const { mapStart, blocksStart, end } = pool;
  for (let address = blocksStart; address < end; ) {
    const entry = entryIndex(mapStart, address);
    const code = u8[entry]!;
    const kind = code & KIND_MASK;
    const order = startOrder(code);
    const bytes = 2 ** order;
    if ((code & START) === 0 || order < lowestOrderOf(kind) || order > MAX_ORDER || address % bytes !== 0 || address + bytes > end) {
      throw corrupt(
        `walk: in pool ${pool.index} ${hex(mapStart)}..${hex(end)}, the block at ${hex(address)} has entry ${hex(code)}, ` +
          'which starts no block that fits there: the order map does not tile the pool',
      );
    }
    let requested = bytes;
    if (kind === LIVE || kind === LIVE_MIN) {
      if (!liveDigitsValid(u8, entry, order)) {
        throw corrupt(`walk: live block ${hex(address)} of order ${order} has digits that record no size and alignment calling for that order`);
      }
      requested = bytes - readSlack(u8, entry, order);
    }
    onBlock({ address, order, kind, requested });
    address += bytes;
  }
}

/**
 * `Backend.walk` of the buddy heap: per pool its order map as `metadata`, then every block,
 * live or free, with its order.
 * @throws AllocError `HeapCorrupted` as `walkPool`, or for a pool outside the arena
 */
export function walkBuddyHeap(blocks: BuddyBlocks, visit: (region: HeapRegion) => void): void {
  for (const pool of poolsInOrder(blocks)) {
    visit({ address: pool.mapStart, bytes: pool.blocksStart - pool.mapStart, kind: 'metadata', detail: 'order map' });
    walkPool(blocks, pool, (block) => {
      const bytes = 2 ** block.order;
      if (block.kind === FREE) {
        visit({ address: block.address, bytes, kind: 'free', detail: `order ${block.order}` });
      } else {
        const detail = block.kind === PAGES ? `order ${block.order}, page run` : `order ${block.order}`;
        visit({ address: block.address, bytes, kind: 'live', requested: block.requested, detail });
      }
    });
  }
}

/**
 * `Backend.classStats` of the buddy heap: one table, "orders", with a row per order from the
 * smallest to the largest that any pool holds a block of, counted by the same map walk as
 * `walk` (so its free blocks add up to `stats().freeBlocks`, the list lengths, whenever
 * `check()` passes).
 * @throws AllocError `HeapCorrupted` as `walkBuddyHeap`
 */
export function buddyClassStats(blocks: BuddyBlocks): StatsTable[] {
  const free = new Array<number>(LIST_SLOTS).fill(0);
  const live = new Array<number>(LIST_SLOTS).fill(0);
  const requested = new Array<number>(LIST_SLOTS).fill(0);
  let largest = MIN_ORDER;
  for (const pool of poolsInOrder(blocks)) {
    walkPool(blocks, pool, (block) => {
      if (block.kind === FREE) free[block.order]!++;
      else {
        live[block.order]!++;
        requested[block.order]! += block.requested;
      }
      if (block.order > largest) largest = block.order;
    });
  }
  const rows: Record<string, number>[] = [];
  for (let order = MIN_ORDER; order <= largest; order++) {
    const bytes = 2 ** order;
    rows.push({
      order,
      blockBytes: bytes,
      freeBlocks: free[order]!,
      freeBytes: free[order]! * bytes,
      liveBlocks: live[order]!,
      liveBytes: live[order]! * bytes,
      requestedBytes: requested[order]!,
    });
  }
  return [
    {
      name: 'orders',
      description: 'one row per block order: a block of order k is 2^k bytes at a multiple of 2^k; free blocks are on the free list of their order',
      columns: [
        { key: 'order', label: 'order' },
        { key: 'blockBytes', label: 'block size' },
        { key: 'freeBlocks', label: 'free blocks' },
        { key: 'freeBytes', label: 'free bytes' },
        { key: 'liveBlocks', label: 'live blocks' },
        { key: 'liveBytes', label: 'live bytes' },
        { key: 'requestedBytes', label: 'requested bytes' },
      ],
      rows,
    },
  ];
}
