/**
 * The basic backend's repair after a thread died holding the heap lock: a file-system check
 * over the arena's own records. Walks each pool of core's table by header sizes (they tile
 * the pool at every instant, see basic.ts), keeps the blocks whose header says USED and whose
 * tag matches as live, merges every other run into one free block with its footer, and
 * rewrites the PREV_USED bits, the address-ordered free list and the counters.
 */

import type { BackendRepair } from '../backend/contract.js';
import { hex } from '../errors.js';
import { corrupt } from './errors.js';
import {
  B_NEXT,
  B_PREV,
  B_TAG,
  BASIC_MAGIC,
  type BasicHeapView,
  FLAGS,
  HEADER_BYTES,
  MIN_BLOCK,
  poolBlocks,
  PREV_USED,
  SENTINEL_BYTES,
  SLACK_MASK,
  tagMatches,
  USED,
} from './layout.js';

/**
 * Rebuilds everything but the block headers.
 * @throws AllocError `HeapCorrupted` when the control state or a pool's headers are broken
 *   (a size that does not tile the pool): then there is nothing sound to rebuild from
 */
export function recoverBasicHeap(heap: BasicHeapView): BackendRepair {
  const u32 = heap.u32;
  if (u32[heap.sMagic] !== BASIC_MAGIC) throw corrupt('cannot recover: the control state is not formatted');
  const poolCount = heap.pools.count();
  const pools: { start: number; sentinel: number }[] = [];
  for (let i = 0; i < poolCount; i++) {
    const { first: start, sentinel } = poolBlocks(heap.pools.start(i), heap.pools.end(i));
    if (start < heap.arenaStart || sentinel + SENTINEL_BYTES > heap.arenaEnd || sentinel - start < MIN_BLOCK) {
      throw corrupt(`cannot recover: pool ${i} ${hex(start)}..${hex(sentinel)} is outside the arena or too small`);
    }
    pools.push({ start, sentinel });
  }
  // The free list is in address order across pools too.
  pools.sort((a, b) => a.start - b.start);
  let head = 0;
  let lastFree = 0;
  let used = 0;
  let requested = 0;
  let granted = 0;
  let live = 0;
  let freeBlocks = 0;
  let total = 0;
  let unfinished = 0;
  const closeRun = (start: number, end: number): void => {
    heap.writeFree(start, end - start);
    u32[(start + B_NEXT) >>> 2] = 0;
    u32[(start + B_PREV) >>> 2] = lastFree;
    if (lastFree === 0) head = start;
    else u32[(lastFree + B_NEXT) >>> 2] = start;
    lastFree = start;
    freeBlocks++;
  };
  for (const { start, sentinel } of pools) {
    total += sentinel - start;
    let run = 0;
    let previousLive = true;
    for (let b = start; b < sentinel; ) {
      const hdr = u32[b >>> 2]!;
      const size = hdr - (hdr & FLAGS);
      if (size < MIN_BLOCK || b + size > sentinel) {
        throw corrupt(`cannot recover: block ${hex(b)} has size ${size}, so the headers do not tile the pool ${hex(start)}..${hex(sentinel)}`);
      }
      const tag = u32[(b + B_TAG) >>> 2]!;
      if ((hdr & USED) !== 0 && tagMatches(tag, b, size, heap.cookie)) {
        if (run !== 0) closeRun(run, b);
        run = 0;
        u32[b >>> 2] = size | USED | (previousLive ? PREV_USED : 0);
        const slack = tag & SLACK_MASK;
        live++;
        used += size;
        granted += size - HEADER_BYTES;
        requested += size - HEADER_BYTES - slack;
        previousLive = true;
      } else {
        if ((hdr & USED) !== 0) unfinished++;
        if (run === 0) run = b;
        previousLive = false;
      }
      b += size;
    }
    if (run !== 0) closeRun(run, sentinel);
    u32[sentinel >>> 2] = USED | (previousLive ? PREV_USED : 0);
    u32[(sentinel + B_TAG) >>> 2] = 0;
  }
  u32[heap.sHead] = head;
  heap.counters.restore({
    totalBytes: total,
    usedBytes: used,
    requestedBytes: requested,
    grantedBytes: granted,
    liveBlocks: live,
    freeBlocks,
    metadataBytes: 0,
  });
  const notes = [`rebuilt ${freeBlocks} free blocks and the counters of ${live} live blocks over ${poolCount} pools`];
  if (unfinished > 0) notes.push(`${unfinished} block(s) marked used without a valid tag (an unfinished allocation or resize) are free again`);
  return { lostBytes: 0, lostBlocks: 0, notes };
}
