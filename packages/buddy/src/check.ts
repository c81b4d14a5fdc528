/**
 * `check()` of the buddy heap: walks every pool block by block through its order map, then
 * every free list, and verifies each invariant stated in `blocks.ts`, `order-map.ts`
 * and `free-lists.ts`. It may allocate (it is no hot path).
 */

import { type CheckReport, HeapChecker, hex } from '@heaplab/core/backend';

import type { BuddyBlocks } from './blocks.js';
import { FB_MAP_START, FB_NEXT, FB_PREV, FREE, KIND_MASK, LIST_SLOTS, LIVE, LIVE_MIN, START, UNIT_BYTES } from './layout.js';
import { entryIndex, firstStartBit, liveDigitsValid, lowestOrderOf, readSlack, startOrder } from './order-map.js';
import { MAX_ORDER } from './orders.js';

const checker = new HeapChecker('buddy heap');

function corrupt(message: string): never {
  throw checker.corrupt(message);
}

/**
 * Verifies every invariant of the heap whose blocks `blocks` views.
 * @throws AllocError `HeapCorrupted` naming the first violation found and its address
 */
export function checkBuddyHeap(blocks: BuddyBlocks): CheckReport {
  const { u8, u32, pools, lists } = blocks;
  if (!blocks.isFormatted()) corrupt(`control state at ${hex(blocks.stateOffset)} is not formatted`);
  const poolCount = pools.count();
  if (poolCount < 1) corrupt('no pool is recorded');
  const freeOfOrder = new Array<number>(LIST_SLOTS).fill(0);
  let blockCount = 0;
  let live = 0;
  let used = 0;
  let requested = 0;
  let freeBytes = 0;
  let total = 0;
  let metadata = 0;
  for (let pool = 0; pool < poolCount; pool++) {
    const mapStart = pools.mapStart(pool);
    const blocksStart = pools.blocksStart(pool);
    const end = pools.end(pool);
    const name = `pool ${pool} ${hex(mapStart)}..${hex(end)}`;
    // Core checked the range before the backend formatted it; a pool too small for its map
    // and a block would have been refused, so one here was never formatted.
    if (mapStart < blocks.arenaStart || end > blocks.arenaEnd || blocksStart + UNIT_BYTES > end) {
      corrupt(`${name} (blocks from ${hex(blocksStart)}) is outside the arena or too small`);
    }
    total += end - blocksStart;
    metadata += blocksStart - mapStart;
    for (let block = mapStart; block < blocksStart; block += UNIT_BYTES) {
      if (u8[entryIndex(mapStart, block)] !== 0) corrupt(`${name}: the entry of ${hex(block)}, inside the order map, is not 0`);
    }
    for (let block = blocksStart; block < end; ) {
      const entry = entryIndex(mapStart, block);
      const code = u8[entry]!;
      const where = `block ${hex(block)} (${name})`;
      if ((code & START) === 0) corrupt(`${where}: the walk expects a block here but its entry ${hex(code)} starts none`);
      const kind = code & KIND_MASK;
      const order = startOrder(code);
      if (order < lowestOrderOf(kind) || order > MAX_ORDER) corrupt(`${where}: order ${order} is out of range for entry ${hex(code)}`);
      const bytes = 2 ** order;
      if (block % bytes !== 0) corrupt(`${where}: not aligned to its size ${bytes}`);
      if (block + bytes > end) corrupt(`${where}: its ${bytes} bytes run past the pool's end`);
      const inner = firstStartBit(u8, u32, entry + 1, entry + bytes / UNIT_BYTES);
      if (inner >= 0) {
        corrupt(`${where}: the entry of ${hex(mapStart + (inner - mapStart) * UNIT_BYTES)}, inside the block, starts a block`);
      }
      blockCount++;
      if (kind === FREE) {
        freeOfOrder[order]!++;
        freeBytes += bytes;
        const recorded = u32[(block + FB_MAP_START) >>> 2]!;
        if (recorded !== mapStart) corrupt(`${where}: free block records map ${hex(recorded)}, not ${hex(mapStart)}`);
        const buddy = (block ^ bytes) >>> 0;
        if (order < MAX_ORDER && buddy >= blocksStart && buddy < end && u8[entryIndex(mapStart, buddy)] === (FREE | order)) {
          corrupt(`${where}: it and its buddy ${hex(buddy)} are both free of order ${order} (missed merge)`);
        }
      } else {
        let slack = 0;
        if (kind === LIVE || kind === LIVE_MIN) {
          if (!liveDigitsValid(u8, entry, order)) {
            corrupt(`${where}: its digits do not record a size and alignment that call for order ${order}`);
          }
          slack = readSlack(u8, entry, order);
        }
        live++;
        used += bytes;
        requested += bytes - slack;
      }
      block += bytes;
    }
  }
  const mask = lists.nonEmptyMask();
  for (let order = 0; order < LIST_SLOTS; order++) {
    const head = lists.head(order);
    const expected = freeOfOrder[order]!;
    let listed = 0;
    let prev = 0;
    // The map walk found `expected` free blocks of this order: a longer list has a cycle or a stray entry.
    const budget = checker.budget(expected, `free list ${order}`);
    for (let block = head; block !== 0; block = u32[(block + FB_NEXT) >>> 2]!) {
      budget.step();
      const pool = pools.find(block);
      const code = pool < 0 ? -1 : u8[entryIndex(pools.foundMap, block)]!;
      if (code !== (FREE | order) || block % 2 ** order !== 0) {
        corrupt(`free list ${order} holds ${hex(block)} (after ${hex(prev)}), which is not a free block of order ${order}`);
      }
      const back = u32[(block + FB_PREV) >>> 2]!;
      if (back !== prev) corrupt(`free block ${hex(block)}: previous link ${hex(back)} should be ${hex(prev)}`);
      listed++;
      prev = block;
    }
    if (listed !== expected) corrupt(`free list ${order} holds ${listed} blocks but the pools hold ${expected} free blocks of order ${order}`);
    if (lists.length(order) !== listed) corrupt(`free list ${order} records length ${lists.length(order)} but holds ${listed} blocks`);
    if (((mask >>> order) & 1) !== (head !== 0 ? 1 : 0)) {
      corrupt(`the non-empty mask ${hex(mask)} disagrees with free list ${order} (head ${hex(head)})`);
    }
  }
  // grantedBytes is usedBytes (blocks have no header); freeBlocks is the list lengths,
  // checked above (core's counter is not kept, see layout.ts).
  const mismatch = blocks.counters.mismatch({
    usedBytes: used,
    requestedBytes: requested,
    grantedBytes: used,
    liveBlocks: live,
    totalBytes: total,
    metadataBytes: metadata,
  });
  if (mismatch !== null) corrupt(`counter ${mismatch}`);
  let freeBlocks = 0;
  for (const count of freeOfOrder) freeBlocks += count;
  return { blocks: blockCount, liveBlocks: live, freeBlocks, usedBytes: used, freeBytes, pools: poolCount };
}
