/**
 * `recover()` of the buddy heap: after a thread died holding the heap lock, rebuild the free
 * lists, their lengths, the non-empty mask and core's counters from core's pool table and the
 * order maps, as a file-system check does. What a dead thread can leave, and why the maps
 * can be trusted, is in "What a dead thread leaves, and how `recover` rebuilds" in
 * `layout.ts`. It may allocate (it is no hot path).
 */

import { type BackendRepair, hex } from '@heaplab/core/backend';

import type { BuddyBlocks } from './blocks.js';
import { ALIGN_BASE_LOG, corrupt, FREE, KIND_MASK, LIST_SLOTS, LIVE, LIVE_MIN, START, UNIT_BYTES } from './layout.js';
import { entryIndex, firstStartBit, liveDigitsValid, lowestOrderOf, readSlack, startOrder, writeLiveDigits } from './order-map.js';
import { MAX_ORDER } from './orders.js';

/** Zeroes every entry in `[from, to)` whose START bit is set; returns how many. */
function clearStarts(u8: Uint8Array, u32: Uint32Array, from: number, to: number): number {
  let cleared = 0;
  for (let at = firstStartBit(u8, u32, from, to); at >= 0; at = firstStartBit(u8, u32, at + 1, to)) {
    u8[at] = 0;
    cleared++;
  }
  return cleared;
}

/**
 * Checks that every pool of core's table is one the backend could have formatted and that
 * its map tiles it (jumping from each start entry to the end of its block), writing nothing:
 * a recovery that cannot succeed leaves the arena as the dead thread left it.
 * @throws AllocError `HeapCorrupted` naming the first thing that cannot be rebuilt from
 */
function checkTiling(blocks: BuddyBlocks): void {
  const { u8, pools } = blocks;
  if (!blocks.isFormatted()) throw corrupt('cannot recover: the control state is not formatted');
  const poolCount = pools.count();
  if (poolCount < 1) throw corrupt('cannot recover: no pool is recorded');
  for (let pool = 0; pool < poolCount; pool++) {
    const mapStart = pools.mapStart(pool);
    const blocksStart = pools.blocksStart(pool);
    const end = pools.end(pool);
    const name = `pool ${pool} ${hex(mapStart)}..${hex(end)}`;
    if (mapStart < blocks.arenaStart || end > blocks.arenaEnd || blocksStart + UNIT_BYTES > end) {
      throw corrupt(`cannot recover: ${name} (blocks from ${hex(blocksStart)}) is outside the arena or too small`);
    }
    for (let block = blocksStart; block < end; ) {
      const code = u8[entryIndex(mapStart, block)]!;
      const order = startOrder(code);
      if ((code & START) === 0 || order < lowestOrderOf(code & KIND_MASK) || order > MAX_ORDER || block % 2 ** order !== 0 || block + 2 ** order > end) {
        throw corrupt(
          `cannot recover: in ${name}, the block at ${hex(block)} has entry ${hex(code)}, which starts no block that ` +
            'fits there, so the order map does not tile the pool',
        );
      }
      block += 2 ** order;
    }
  }
}

/**
 * Rebuilds everything but the start entries of the blocks (see the file comment). Returns
 * what it did; nothing is ever lost (every byte of a pool lies in a block).
 * @throws AllocError `HeapCorrupted` when a pool or a map is broken (see `checkTiling`);
 *   nothing is written then
 */
export function recoverBuddyHeap(blocks: BuddyBlocks): BackendRepair {
  checkTiling(blocks);
  const { u8, u32, pools, lists } = blocks;
  lists.clear();
  let total = 0;
  let metadata = 0;
  const tails = new Array<number>(LIST_SLOTS).fill(0);
  let freeBlocks = 0;
  let live = 0;
  let used = 0;
  let requested = 0;
  let stale = 0;
  let merged = 0;
  let resetDigits = 0;
  // Free blocks seen since the last live one, in address order, as a stack: a free block
  // whose lower buddy is on top of it merges with it (and the result may merge again).
  const stackAddress: number[] = [];
  const stackOrder: number[] = [];
  const poolCount = pools.count();
  for (let pool = 0; pool < poolCount; pool++) {
    const mapStart = pools.mapStart(pool);
    const blocksStart = pools.blocksStart(pool);
    const end = pools.end(pool);
    total += end - blocksStart;
    metadata += blocksStart - mapStart;
    const flush = (): void => {
      for (let i = 0; i < stackAddress.length; i++) {
        const block = stackAddress[i]!;
        const order = stackOrder[i]!;
        u8[entryIndex(mapStart, block)] = FREE | order;
        lists.append(block, order, mapStart, tails[order]!);
        tails[order] = block;
        freeBlocks++;
      }
      stackAddress.length = 0;
      stackOrder.length = 0;
    };
    // The entries of the map's own units are 0 (nothing starts in the map).
    for (let at = mapStart, to = entryIndex(mapStart, blocksStart); at < to; at++) {
      if (u8[at] !== 0) {
        u8[at] = 0;
        stale++;
      }
    }
    for (let block = blocksStart; block < end; ) {
      const entry = entryIndex(mapStart, block);
      const code = u8[entry]!;
      const kind = code & KIND_MASK;
      const order = startOrder(code);
      const bytes = 2 ** order;
      if (kind === FREE) {
        stale += clearStarts(u8, u32, entry + 1, entry + bytes / UNIT_BYTES);
        let start = block;
        let k = order;
        for (let top = stackAddress.length - 1; top >= 0 && k < MAX_ORDER; top--) {
          const lower = stackAddress[top]!;
          if (stackOrder[top] !== k || lower + 2 ** k !== start || lower % 2 ** (k + 1) !== 0) break;
          u8[entryIndex(mapStart, start)] = 0;
          stackAddress.pop();
          stackOrder.pop();
          start = lower;
          k++;
          merged++;
        }
        stackAddress.push(start);
        stackOrder.push(k);
      } else {
        flush();
        let slack = 0;
        if (kind === LIVE || kind === LIVE_MIN) {
          if (!liveDigitsValid(u8, entry, order)) {
            writeLiveDigits(u8, entry, order, 0, ALIGN_BASE_LOG);
            resetDigits++;
          }
          slack = readSlack(u8, entry, order);
        }
        stale += clearStarts(u8, u32, entry + 1, entry + bytes / UNIT_BYTES);
        live++;
        used += bytes;
        requested += bytes - slack;
      }
      block += bytes;
    }
    flush();
  }
  blocks.counters.restore({
    totalBytes: total,
    usedBytes: used,
    requestedBytes: requested,
    grantedBytes: used,
    liveBlocks: live,
    // Not kept (see layout.ts): the list lengths just rebuilt count the free blocks.
    freeBlocks: 0,
    metadataBytes: metadata,
  });
  const notes = [`rebuilt ${freeBlocks} free blocks and the counters of ${live} live blocks over ${poolCount} pools`];
  if (stale > 0) notes.push(`cleared ${stale} stale start entries inside blocks (an unfinished split or merge)`);
  if (merged > 0) notes.push(`merged ${merged} pairs of free buddies`);
  if (resetDigits > 0) {
    notes.push(`${resetDigits} live block(s) caught mid-resize now record their whole block as requested, aligned to 8`);
  }
  return { lostBytes: 0, lostBlocks: 0, notes };
}
