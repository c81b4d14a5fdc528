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
  SIZE_SLACK_BITS,
  SL_COUNT,
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
import { listMinSize, listOf } from './size-classes.js';

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

/**
 * Walks every free list: each is doubly linked and ends, holds only free blocks whose size
 * maps to it, and together they hold every free block exactly once; each bitmap bit is set
 * exactly when its list (or second-level word) is not empty.
 */
function checkLists(heap: HeapView, freeBlocks: Map<number, number>): void {
  const { u32, stateOffset } = heap;
  const flBitmap = u32[(stateOffset + ST_FL_BITMAP) >>> 2]!;
  if (flBitmap >>> FL_COUNT !== 0) corrupt(`first-level bitmap ${hex(flBitmap)} has bits at or above level ${FL_COUNT}`);
  const listed = new Set<number>();
  for (let fl = 0; fl < FL_COUNT; fl++) {
    const slBitmap = u32[(stateOffset + ST_SL_BITMAPS + fl * 4) >>> 2]!;
    if (((flBitmap >>> fl) & 1) !== (slBitmap !== 0 ? 1 : 0)) {
      corrupt(`first-level bit ${fl} is ${(flBitmap >>> fl) & 1} but second-level bitmap ${fl} is ${hex(slBitmap)}`);
    }
    for (let sl = 0; sl < SL_COUNT; sl++) {
      const list = fl * SL_COUNT + sl;
      let b = u32[(stateOffset + ST_LIST_HEADS + list * 4) >>> 2]!;
      if (((slBitmap >>> sl) & 1) !== (b !== 0 ? 1 : 0)) {
        corrupt(`second-level bit (${fl}, ${sl}) is ${(slBitmap >>> sl) & 1} but the list head is ${hex(b)}`);
      }
      let prev = 0;
      while (b !== 0) {
        const where = `free list (${fl}, ${sl}) of sizes from ${listMinSize(list)}: entry ${hex(b)} after ${hex(prev)}`;
        const belongs = freeBlocks.get(b);
        if (belongs === undefined) corrupt(`${where} is not a free block of any pool`);
        if (listed.has(b)) corrupt(`${where} is listed twice (a cycle or a block on two lists)`);
        if (belongs !== list) corrupt(`${where} has a size that belongs on list ${belongs}`);
        const back = u32[(b + B_PREV_FREE) >>> 2]!;
        if (back !== prev) corrupt(`${where} has the previous link ${hex(back)}`);
        listed.add(b);
        prev = b;
        b = u32[(b + B_NEXT_FREE) >>> 2]!;
      }
    }
  }
  if (listed.size !== freeBlocks.size) {
    for (const b of freeBlocks.keys()) {
      if (!listed.has(b)) corrupt(`free block ${hex(b)} is on no free list (its size maps to list ${freeBlocks.get(b)})`);
    }
  }
}
