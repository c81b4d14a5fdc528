/**
 * `check()` for the TLSF backend: walks every pool of core's table block by block, then
 * every free list, and verifies each invariant the allocator keeps against what it finds,
 * and core's counters against the walk. Not a hot path: it may allocate freely, but every
 * walk is bounded so a corrupted heap cannot make it loop.
 */

import type { CheckReport } from '@heaplab/core/backend';
import { hex } from '@heaplab/core/backend';

import { checker } from './errors.js';
import {
  addressOfWord,
  B_NEXT_FREE,
  B_PREV_FREE,
  B_PREV_PHYS,
  B_SIZE,
  END_SENTINEL_BYTES,
  EXTENDED_SLACK,
  FL_COUNT,
  FRONT_SENTINEL_BYTES,
  HEADER_BYTES,
  type HeapView,
  MAX_SLACK,
  MIN_BLOCK_BYTES,
  MIN_POOL_BYTES,
  POOL_OVERHEAD_BYTES,
  poolBounds,
  PREV_SLACK_BITS,
  SIZE_FLAG_BITS,
  SIZE_SLACK_BITS,
  SL_COUNT,
  SL_COUNT_LOG2,
  ST_FL_BITMAP,
  ST_LIST_HEADS,
  ST_MAGIC,
  ST_SL_BITMAPS,
  sizeOfWord,
  slackOfWords,
  T_INFO_FROM_END,
  TLSF_MAGIC,
  TRAILER_BYTES,
  TRAILER_SLACK_MASK,
  trailerValid,
  USED,
} from './layout.js';
import { listOf } from './size-classes.js';

function corrupt(message: string): never {
  throw checker.corrupt(message);
}

/** What the pool walk found, for the list walk and the counters. */
interface PoolWalk {
  /** Every free block, with the list its size maps to. */
  freeBlocks: Map<number, number>;
  blocks: number;
  live: number;
  used: number;
  requested: number;
  /** Usable bytes of live blocks: their size less the header, and the trailer of an aligned one. */
  granted: number;
  freeBytes: number;
  total: number;
}

/**
 * Verifies the whole TLSF heap.
 * @throws AllocError `HeapCorrupted` naming the first violation, its address and the
 *   invariant it breaks
 */
export function checkHeap(heap: HeapView): CheckReport {
  const { u32, stateOffset } = heap;
  const magic = u32[(stateOffset + ST_MAGIC) >>> 2]!;
  if (magic !== TLSF_MAGIC) corrupt(`control state at ${hex(stateOffset)} is not formatted (magic ${hex(magic)})`);
  const poolCount = heap.pools.count();
  if (poolCount < 1) corrupt('no pool is recorded');
  const walk: PoolWalk = { freeBlocks: new Map(), blocks: 0, live: 0, used: 0, requested: 0, granted: 0, freeBytes: 0, total: 0 };
  const ranges: [number, number][] = [];
  for (let i = 0; i < poolCount; i++) {
    const { start, end } = poolBounds(heap.pools.start(i), heap.pools.end(i));
    if (start < heap.arenaStart || end > heap.arenaEnd || end - start < MIN_POOL_BYTES) {
      corrupt(`pool ${i} ${hex(start)}..${hex(end)} is outside the arena or too small`);
    }
    ranges.push([start, end]);
    walkPool(u32, i, start, end, walk);
  }
  // Core refuses overlapping ranges; a table that says otherwise was written over.
  ranges.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]![0] < ranges[i - 1]![1]) corrupt(`pools at ${hex(ranges[i - 1]![0])} and ${hex(ranges[i]![0])} overlap`);
  }
  checkLists(heap, walk.freeBlocks);
  const mismatch = heap.counters.mismatch({
    freeBlocks: walk.freeBlocks.size,
    liveBlocks: walk.live,
    usedBytes: walk.used,
    requestedBytes: walk.requested,
    grantedBytes: walk.granted,
    totalBytes: walk.total,
    metadataBytes: poolCount * POOL_OVERHEAD_BYTES,
  });
  if (mismatch !== null) corrupt(`counter ${mismatch}`);
  return {
    blocks: walk.blocks,
    liveBlocks: walk.live,
    freeBlocks: walk.freeBlocks.size,
    usedBytes: walk.used,
    freeBytes: walk.freeBytes,
    pools: poolCount,
  };
}

/**
 * Walks pool `index` from its front sentinel to its end sentinel: blocks tile it, each
 * block's prevPhys is the block before it, no two free blocks touch, free blocks carry no
 * slack bits and live blocks at most MAX_SLACK.
 */
function walkPool(u32: Uint32Array, index: number, start: number, end: number, walk: PoolWalk): void {
  const front = u32[(start + B_SIZE) >>> 2]!;
  if (u32[(start + B_PREV_PHYS) >>> 2] !== 0 || front !== (FRONT_SENTINEL_BYTES | USED)) {
    corrupt(`pool ${index}: front sentinel at ${hex(start)} has header ${hex(u32[start >>> 2]!)} ${hex(front)}`);
  }
  const endSentinel = end - END_SENTINEL_BYTES;
  let prev = start;
  let prevFree = false;
  let b = start + FRONT_SENTINEL_BYTES;
  while (b < endSentinel) {
    const prevWord = u32[(b + B_PREV_PHYS) >>> 2]!;
    const sizeWord = u32[(b + B_SIZE) >>> 2]!;
    const size = sizeOfWord(sizeWord);
    const where = `block ${hex(b)} (pool ${index})`;
    if (size < MIN_BLOCK_BYTES) corrupt(`${where}: size ${size} is below the minimum block ${MIN_BLOCK_BYTES}`);
    if (b + size > endSentinel) corrupt(`${where}: size ${size} runs past the end sentinel at ${hex(endSentinel)}`);
    if (addressOfWord(prevWord) !== prev) {
      corrupt(`${where}: prevPhys ${hex(addressOfWord(prevWord))} should be the block before it, ${hex(prev)}`);
    }
    walk.blocks++;
    if ((sizeWord & USED) !== 0) {
      let slack = slackOfWords(prevWord, sizeWord);
      let usable = size - HEADER_BYTES;
      if (slack === EXTENDED_SLACK) {
        const trailer = size >= MIN_BLOCK_BYTES + TRAILER_BYTES ? u32[(b + size - T_INFO_FROM_END) >>> 2]! : 0;
        if (!trailerValid(trailer, b, size)) corrupt(`${where}: over-aligned block has a damaged trailer ${hex(trailer)}`);
        slack = trailer & TRAILER_SLACK_MASK;
        usable -= TRAILER_BYTES;
      } else if (slack > MAX_SLACK || slack > usable) {
        corrupt(`${where}: slack ${slack} exceeds ${MAX_SLACK} or the usable size ${usable}`);
      }
      walk.live++;
      walk.used += size;
      walk.granted += usable;
      walk.requested += usable - slack;
      prevFree = false;
    } else {
      if (prevFree) corrupt(`${where}: free block follows the free block ${hex(prev)} (missed merge)`);
      if ((sizeWord & SIZE_SLACK_BITS) !== 0 || (prevWord & PREV_SLACK_BITS) !== 0) {
        corrupt(`${where}: free block has slack bits in its header ${hex(prevWord)} ${hex(sizeWord)}`);
      }
      walk.freeBlocks.set(b, listOf(size));
      walk.freeBytes += size;
      prevFree = true;
    }
    prev = b;
    b += size;
  }
  if (b !== endSentinel) corrupt(`pool ${index}: the block walk ends at ${hex(b)}, not at the end sentinel ${hex(endSentinel)}`);
  const endPrev = u32[(endSentinel + B_PREV_PHYS) >>> 2]!;
  const endSize = u32[(endSentinel + B_SIZE) >>> 2]!;
  if (endPrev !== prev || endSize !== USED) {
    corrupt(`pool ${index}: end sentinel at ${hex(endSentinel)} has header ${hex(endPrev)} ${hex(endSize)}; its prevPhys should be ${hex(prev)}`);
  }
  walk.total += end - start - POOL_OVERHEAD_BYTES;
}

/** One occupied free list, as the walk and the tables see it. */
export interface ListFigures {
  fl: number;
  sl: number;
  blocks: number;
  /** Block sizes, headers included. */
  bytes: number;
}

/** The free lists read from the control state: where each free block is listed, and per list. */
export interface ListedFree {
  /** Free block address -> its list index (`fl * SL_COUNT + sl`). */
  blocks: Map<number, number>;
  /** The occupied lists, in list order. */
  lists: ListFigures[];
  flBitmap: number;
  /** The second-level bitmap of each first level (all FL_COUNT of them). */
  slBitmaps: number[];
}

/**
 * Reads every free list, checking each link before it is followed: a free header, 8-aligned
 * in the arena, whose size maps to that list, linked back to the block before it. The
 * bitmaps must name exactly the occupied lists, and the lists hold at most
 * `counters.freeBlocks` blocks in all (the bound that ends a cycle); whether they hold them
 * all is for the caller to compare (`expectListedCount`, or check()'s pool walk).
 * @throws AllocError `HeapCorrupted` naming the first bad link or bit
 */
export function readFreeLists(heap: HeapView): ListedFree {
  const { u32, stateOffset } = heap;
  const flBitmap = u32[(stateOffset + ST_FL_BITMAP) >>> 2]!;
  const count = heap.counters.freeBlocks;
  const blocks = new Map<number, number>();
  const lists: ListFigures[] = [];
  const slBitmaps: number[] = [];
  if (flBitmap >>> FL_COUNT !== 0) throw checker.corrupt(`first-level bitmap ${hex(flBitmap)} has bits at or above level ${FL_COUNT}`);
  for (let fl = 0; fl < FL_COUNT; fl++) {
    const slBitmap = u32[(stateOffset + ST_SL_BITMAPS + fl * 4) >>> 2]!;
    slBitmaps.push(slBitmap);
    if (((flBitmap >>> fl) & 1) !== (slBitmap !== 0 ? 1 : 0)) {
      throw checker.corrupt(`first-level bit ${fl} is ${(flBitmap >>> fl) & 1} but second-level bitmap ${fl} is ${hex(slBitmap)}`);
    }
    for (let sl = 0; sl < SL_COUNT; sl++) {
      const list = (fl << SL_COUNT_LOG2) | sl;
      let b = u32[(stateOffset + ST_LIST_HEADS + list * 4) >>> 2]!;
      if (((slBitmap >>> sl) & 1) !== (b !== 0 ? 1 : 0)) {
        throw checker.corrupt(`second-level bit (${fl}, ${sl}) is ${(slBitmap >>> sl) & 1} but the list head is ${hex(b)}`);
      }
      if (b === 0) continue;
      const figures: ListFigures = { fl, sl, blocks: 0, bytes: 0 };
      let prev = 0;
      while (b !== 0) {
        const where = `free list (${fl}, ${sl}): entry ${hex(b)} after ${hex(prev)}`;
        if (blocks.size >= count) throw checker.corrupt(`${where}: the lists hold more than the ${count} free blocks counted (a cycle or a stray link)`);
        checker.link(b, heap.arenaStart, heap.arenaEnd - MIN_BLOCK_BYTES, 8, where);
        const sizeWord = u32[(b + B_SIZE) >>> 2]!;
        const size = sizeOfWord(sizeWord);
        if ((sizeWord & SIZE_FLAG_BITS) !== 0 || size < MIN_BLOCK_BYTES || b + size > heap.arenaEnd) {
          throw checker.corrupt(`${where} is not a free block (size word ${hex(sizeWord)})`);
        }
        if (listOf(size) !== list) throw checker.corrupt(`${where} has a size that belongs on list ${listOf(size)} (${listName(listOf(size))})`);
        if (blocks.has(b)) throw checker.corrupt(`${where} is listed twice (a cycle or a block on two lists)`);
        const back = u32[(b + B_PREV_FREE) >>> 2]!;
        if (back !== prev) throw checker.corrupt(`${where} has the previous link ${hex(back)}`);
        blocks.set(b, list);
        figures.blocks++;
        figures.bytes += size;
        prev = b;
        b = u32[(b + B_NEXT_FREE) >>> 2]!;
      }
      lists.push(figures);
    }
  }
  return { blocks, lists, flBitmap, slBitmaps };
}

/**
 * The lists hold every free block the counters count.
 * @throws AllocError `HeapCorrupted` when they hold fewer
 */
export function expectListedCount(heap: HeapView, listed: ListedFree): void {
  const count = heap.counters.freeBlocks;
  if (listed.blocks.size !== count) throw checker.corrupt(`the free lists hold ${listed.blocks.size} blocks but the counters say ${count}`);
}

/** "fl 7 sl 3", the list a free block of `list` is on. */
export function listName(list: number): string {
  return `fl ${list >>> SL_COUNT_LOG2} sl ${list & (SL_COUNT - 1)}`;
}

/**
 * The free lists (read and checked by `readFreeLists`: links, sizes per list, bitmaps, the
 * count) hold exactly the free blocks the pool walk found.
 */
function checkLists(heap: HeapView, freeBlocks: Map<number, number>): void {
  const listed = readFreeLists(heap).blocks;
  for (const [b, list] of listed) {
    if (!freeBlocks.has(b)) corrupt(`free list ${listName(list)}: entry ${hex(b)} is not a free block of any pool`);
  }
  for (const [b, list] of freeBlocks) {
    if (!listed.has(b)) corrupt(`free block ${hex(b)} is on no free list (its size maps to list ${listName(list)})`);
  }
}
