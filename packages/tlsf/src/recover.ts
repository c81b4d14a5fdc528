/**
 * `recover()` for the TLSF backend: after a thread died holding the heap lock, rebuild
 * everything but the size words from the size words, as a file-system check rebuilds its
 * free maps from the inodes. Why the size words are enough, and what a death can leave, is
 * in layout.ts ("What a dead thread leaves, and how `recover` rebuilds").
 *
 * Three passes. The first walks each pool by size words and only reads: when they do not
 * tile a pool, nothing sound is left to rebuild from, and the heap is left as it was
 * (`HeapCorrupted`). The second reads the old free lists, keeping each one's order as far as
 * its entries are still free blocks of its size (so a recovery of an intact heap changes
 * nothing). The third writes: headers, prevPhys words, lists, bitmaps, core's counters. It only
 * merges whole free blocks, so the size words tile every pool at each of its stores too, and
 * a recovery that dies can run again. Not a hot path: it may allocate.
 */

import { type BackendRepair, hex } from '@heaplab/core/backend';

import { checker } from './errors.js';
import {
  B_NEXT_FREE,
  B_PREV_FREE,
  B_PREV_PHYS,
  B_SIZE,
  END_SENTINEL_BYTES,
  EXTENDED_SLACK,
  FL_COUNT,
  FRONT_SENTINEL_BYTES,
  GRANULARITY_LOG2,
  HEADER_BYTES,
  type HeapView,
  LIST_COUNT,
  MAX_SLACK,
  MIN_BLOCK_BYTES,
  MIN_POOL_BYTES,
  POOL_OVERHEAD_BYTES,
  poolBounds,
  PREV_SLACK_BITS,
  SIZE_SLACK_BITS,
  sizeOfWord,
  SL_COUNT,
  SL_COUNT_LOG2,
  slackOfWords,
  ST_FL_BITMAP,
  ST_LIST_HEADS,
  ST_MAGIC,
  ST_SL_BITMAPS,
  T_INFO_FROM_END,
  TLSF_MAGIC,
  TRAILER_BYTES,
  TRAILER_SLACK_MASK,
  trailerValid,
  trailerWord,
  USED,
} from './layout.js';
import { listOf } from './size-classes.js';

/**
 * Stores `value` at word `index` unless it is there already: a recovery of an intact heap
 * then writes nothing, and one that dies leaves less to redo.
 */
function put(u32: Uint32Array, index: number, value: number): void {
  if (u32[index] !== value) u32[index] = value;
}

/** A stretch of a pool the walk found: one live block, or a run of free blocks. */
interface Segment {
  start: number;
  size: number;
  live: boolean;
  /** Free blocks in the run (1 for a live block). */
  blocks: number;
}

/** One pool and what its walk found. */
interface WalkedPool {
  start: number;
  end: number;
  segments: Segment[];
}

/**
 * Rebuilds the TLSF heap from its block headers, over the pools core's table lists.
 * @throws AllocError `HeapCorrupted` when the control state or a pool's size words are broken
 */
export function recoverHeap(heap: HeapView): BackendRepair {
  const u32 = heap.u32;
  const state = (offset: number): number => (heap.stateOffset + offset) >>> 2;
  if (u32[state(ST_MAGIC)] !== TLSF_MAGIC) throw checker.corrupt('cannot recover: the control state is not formatted');
  const pools = readPools(heap);
  for (const pool of pools) pool.segments = walk(u32, pool);

  // The old lists, in order, as far as their entries are still free blocks of their list.
  const runs = new Map<number, number>();
  for (const pool of pools) for (const segment of pool.segments) if (!segment.live) runs.set(segment.start, listOf(segment.size));
  const order: number[][] = Array.from({ length: LIST_COUNT }, () => []);
  const placed = new Set<number>();
  for (let list = 0; list < LIST_COUNT; list++) {
    for (let b = u32[state(ST_LIST_HEADS + list * 4)]!; runs.get(b) === list && !placed.has(b); b = u32[(b + B_NEXT_FREE) >>> 2]!) {
      order[list]!.push(b);
      placed.add(b);
    }
  }
  for (const [start, list] of runs) if (!placed.has(start)) order[list]!.push(start);

  // Headers and prevPhys words, pool by pool; then the lists; then the counters.
  let live = 0;
  let used = 0;
  let requested = 0;
  let granted = 0;
  let total = 0;
  let merged = 0;
  const notes: string[] = [];
  for (const pool of pools) {
    total += pool.end - pool.start - POOL_OVERHEAD_BYTES;
    put(u32, (pool.start + B_PREV_PHYS) >>> 2, 0);
    put(u32, (pool.start + B_SIZE) >>> 2, FRONT_SENTINEL_BYTES | USED);
    let prev = pool.start;
    for (const { start, size, live: isLive, blocks } of pool.segments) {
      if (isLive) {
        const repaired = repairLiveHeader(u32, start, size, prev);
        if (repaired !== '') notes.push(repaired);
        const prevWord = u32[(start + B_PREV_PHYS) >>> 2]!;
        const slack = slackOfWords(prevWord, u32[(start + B_SIZE) >>> 2]!);
        live++;
        used += size;
        if (slack === EXTENDED_SLACK) {
          granted += size - HEADER_BYTES - TRAILER_BYTES;
          requested += size - HEADER_BYTES - TRAILER_BYTES - (u32[(start + size - T_INFO_FROM_END) >>> 2]! & TRAILER_SLACK_MASK);
        } else {
          granted += size - HEADER_BYTES;
          requested += size - HEADER_BYTES - slack;
        }
      } else {
        if (blocks > 1) merged += blocks - 1;
        // A free header has no flag or slack bits; a run is one free block.
        put(u32, (start + B_PREV_PHYS) >>> 2, prev);
        put(u32, (start + B_SIZE) >>> 2, size);
      }
      prev = start;
    }
    const endSentinel = pool.end - END_SENTINEL_BYTES;
    put(u32, (endSentinel + B_PREV_PHYS) >>> 2, prev);
    put(u32, (endSentinel + B_SIZE) >>> 2, USED);
  }
  let flBitmap = 0;
  const slBitmaps = new Array<number>(FL_COUNT).fill(0);
  for (let list = 0; list < LIST_COUNT; list++) {
    const blocks = order[list]!;
    put(u32, state(ST_LIST_HEADS + list * 4), blocks[0] ?? 0);
    for (let i = 0; i < blocks.length; i++) {
      put(u32, (blocks[i]! + B_NEXT_FREE) >>> 2, blocks[i + 1] ?? 0);
      put(u32, (blocks[i]! + B_PREV_FREE) >>> 2, i === 0 ? 0 : blocks[i - 1]!);
    }
    if (blocks.length > 0) {
      const fl = list >>> SL_COUNT_LOG2;
      slBitmaps[fl] = (slBitmaps[fl]! | (1 << (list & (SL_COUNT - 1)))) >>> 0;
      flBitmap = (flBitmap | (1 << fl)) >>> 0;
    }
  }
  for (let fl = 0; fl < slBitmaps.length; fl++) put(u32, state(ST_SL_BITMAPS + fl * 4), slBitmaps[fl]!);
  put(u32, state(ST_FL_BITMAP), flBitmap);
  // Core's counters, recounted; written only when one differs, as `put` writes (restore
  // keeps the peak at least the used bytes).
  const recount = {
    totalBytes: total,
    usedBytes: used,
    requestedBytes: requested,
    grantedBytes: granted,
    liveBlocks: live,
    freeBlocks: runs.size,
    metadataBytes: pools.length * POOL_OVERHEAD_BYTES,
  };
  if (heap.counters.mismatch(recount) !== null) heap.counters.restore(recount);

  notes.unshift(
    `rebuilt ${runs.size} free blocks, ${placed.size} of them kept in their list order, and the counters of ${live} live blocks over ${pools.length} pools`,
  );
  if (merged > 0) notes.push(`merged ${merged} free block(s) into a free neighbour (a free that died before its merge)`);
  // Every byte of every pool is in a live or a free block: nothing is lost.
  return { lostBytes: 0, lostBlocks: 0, notes };
}

/**
 * Core's pool table, each range rounded in to its TLSF pool, checked: inside the arena, big
 * enough for its sentinels and a block, none overlapping another; in address order.
 */
function readPools(heap: HeapView): WalkedPool[] {
  const count = heap.pools.count();
  if (count < 1) throw checker.corrupt('cannot recover: no pool is recorded');
  const pools: WalkedPool[] = [];
  for (let i = 0; i < count; i++) {
    const { start, end } = poolBounds(heap.pools.start(i), heap.pools.end(i));
    if (start < heap.arenaStart || end > heap.arenaEnd || end - start < MIN_POOL_BYTES) {
      throw checker.corrupt(`cannot recover: pool ${i} ${hex(start)}..${hex(end)} is outside the arena or too small`);
    }
    pools.push({ start, end, segments: [] });
  }
  pools.sort((a, b) => a.start - b.start);
  for (let i = 1; i < pools.length; i++) {
    if (pools[i]!.start < pools[i - 1]!.end) throw checker.corrupt(`cannot recover: pools at ${hex(pools[i - 1]!.start)} and ${hex(pools[i]!.start)} overlap`);
  }
  return pools;
}

/**
 * Walks `pool` by size words, reading only: its live blocks and its runs of free blocks.
 * Every size moves the walk on by at least a minimum block, so it ends.
 * @throws AllocError `HeapCorrupted` when the size words do not tile the pool
 */
function walk(u32: Uint32Array, pool: WalkedPool): Segment[] {
  const segments: Segment[] = [];
  const endSentinel = pool.end - END_SENTINEL_BYTES;
  let run: Segment | null = null;
  for (let b = pool.start + FRONT_SENTINEL_BYTES; b < endSentinel; ) {
    const sizeWord = u32[(b + B_SIZE) >>> 2]!;
    const size = sizeOfWord(sizeWord);
    if (size < MIN_BLOCK_BYTES || b + size > endSentinel) {
      throw checker.corrupt(
        `cannot recover: the block at ${hex(b)} has size ${size}, so the headers do not tile the pool ` + `${hex(pool.start)}..${hex(pool.end)}`,
      );
    }
    if ((sizeWord & USED) !== 0) {
      run = null;
      segments.push({ start: b, size, live: true, blocks: 1 });
    } else if (run === null) {
      run = { start: b, size, live: false, blocks: 1 };
      segments.push(run);
    } else {
      run.size += size;
      run.blocks++;
    }
    b += size;
  }
  return segments;
}

/**
 * Points live block `b` of `size` bytes back at `prev`, keeping its slack bits, and repairs a
 * slack that cannot be right: a torn one (a resize that died between the two header words
 * has the new slack's low bits and the old one's high bits) loses its low bits, which leaves
 * at most the old slack; a damaged trailer (no death makes one: it is written before the size
 * word that exposes it) gets slack 0 and the largest alignment the address has. Returns a
 * note, or ''.
 */
function repairLiveHeader(u32: Uint32Array, b: number, size: number, prev: number): string {
  const prevWord = u32[(b + B_PREV_PHYS) >>> 2]!;
  const sizeWord = u32[(b + B_SIZE) >>> 2]!;
  const slack = slackOfWords(prevWord, sizeWord);
  if (slack === EXTENDED_SLACK) {
    put(u32, (b + B_PREV_PHYS) >>> 2, prev | (prevWord & PREV_SLACK_BITS));
    const at = (b + size - T_INFO_FROM_END) >>> 2;
    if (size >= MIN_BLOCK_BYTES + TRAILER_BYTES && trailerValid(u32[at]!, b, size)) return '';
    const payload = b + HEADER_BYTES;
    const alignLog2 = Math.min(30, 31 - Math.clz32(payload & -payload));
    if (size >= MIN_BLOCK_BYTES + TRAILER_BYTES && alignLog2 > GRANULARITY_LOG2) {
      put(u32, at, trailerWord(b, size, 0, alignLog2));
      return `the damaged alignment trailer of the block at ${hex(b)} was rewritten (slack 0, alignment 2^${alignLog2})`;
    }
    // No alignment above 8 to record (or no room for a trailer): a plain block whose
    // requested size is the usable size it had (slack 8, or all of a block too small).
    const plainSlack = Math.min(TRAILER_BYTES, size - HEADER_BYTES);
    put(u32, (b + B_PREV_PHYS) >>> 2, prev | (plainSlack & PREV_SLACK_BITS));
    put(u32, (b + B_SIZE) >>> 2, size | ((plainSlack >>> 3) << 1) | USED);
    return `the block at ${hex(b)} had a damaged alignment trailer and an 8-aligned address; it is a plain block now`;
  }
  const usable = size - HEADER_BYTES;
  if (slack <= MAX_SLACK && slack <= usable) {
    put(u32, (b + B_PREV_PHYS) >>> 2, prev | (prevWord & PREV_SLACK_BITS));
    return '';
  }
  put(u32, (b + B_PREV_PHYS) >>> 2, prev);
  if ((sizeWord & SIZE_SLACK_BITS) << 2 > Math.min(MAX_SLACK, usable)) put(u32, (b + B_SIZE) >>> 2, size | USED);
  return `the slack ${slack} of the block at ${hex(b)} was out of range (a resize that died between its two header words); it is ${slackOfWords(prev, u32[(b + B_SIZE) >>> 2]!)} now`;
}
