/**
 * The basic backend's `check()`: walks every pool of core's table block by block, then the
 * free list, and checks every invariant basic.ts keeps (each is kept where its comment says)
 * and the counters against what the walk found.
 */

import { hex } from '../errors.js';
import type { CheckReport } from '../interfaces.js';
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

/** @throws AllocError `HeapCorrupted` naming the first violation and its address */
export function checkBasicHeap(heap: BasicHeapView): CheckReport {
  const u32 = heap.u32;
  const fail = (message: string): never => {
    throw corrupt(message);
  };
  if (u32[heap.sMagic] !== BASIC_MAGIC) {
    fail(`control state at ${hex(heap.stateOffset)} is not formatted (magic ${hex(u32[heap.sMagic]!)})`);
  }
  const poolCount = heap.pools.count();
  if (poolCount < 1) fail('no pool is recorded');
  const freeSet = new Set<number>();
  let blocks = 0;
  let live = 0;
  let used = 0;
  let freeBytes = 0;
  let requested = 0;
  let granted = 0;
  let total = 0;
  for (let i = 0; i < poolCount; i++) {
    const { first: ps, sentinel } = poolBlocks(heap.pools.start(i), heap.pools.end(i));
    if (ps < heap.arenaStart || sentinel + SENTINEL_BYTES > heap.arenaEnd || sentinel - ps < MIN_BLOCK) {
      fail(`pool ${i} ${hex(ps)}..${hex(sentinel)} is outside the arena or too small`);
    }
    total += sentinel - ps;
    let prevUsed = true;
    let b = ps;
    while (b < sentinel) {
      const hdr = u32[b >>> 2]!;
      const size = hdr - (hdr & FLAGS);
      const where = `block ${hex(b)} (pool ${i})`;
      if ((hdr & FLAGS & ~(USED | PREV_USED)) !== 0) fail(`${where}: unknown flag bits in header ${hex(hdr)}`);
      if (size < MIN_BLOCK) fail(`${where}: size ${size} is below the minimum block ${MIN_BLOCK}`);
      if (b + size > sentinel) fail(`${where}: size ${size} runs past the pool sentinel at ${hex(sentinel)}`);
      if (((hdr & PREV_USED) !== 0) !== prevUsed) {
        fail(`${where}: PREV_USED is ${(hdr & PREV_USED) !== 0} but the previous block is ${prevUsed ? 'live' : 'free'}`);
      }
      blocks++;
      if ((hdr & USED) !== 0) {
        const tag = u32[(b + B_TAG) >>> 2]!;
        if (!tagMatches(tag, b, size, heap.cookie)) {
          fail(`${where}: live block has a bad tag ${hex(tag)} (hash, slack or alignment does not match the block)`);
        }
        const slack = tag & SLACK_MASK;
        live++;
        used += size;
        granted += size - HEADER_BYTES;
        requested += size - HEADER_BYTES - slack;
        prevUsed = true;
      } else {
        if (!prevUsed) fail(`${where}: free block follows another free block (missed coalesce)`);
        const footer = u32[(b + size - 4) >>> 2]!;
        if (footer !== size) fail(`${where}: footer ${footer} differs from size ${size}`);
        freeSet.add(b);
        freeBytes += size;
        prevUsed = false;
      }
      b += size;
    }
    if (b !== sentinel) fail(`pool ${i}: the block walk ends at ${hex(b)}, not at the sentinel ${hex(sentinel)}`);
    const shdr = u32[sentinel >>> 2]!;
    if (shdr - (shdr & FLAGS) !== 0 || (shdr & USED) === 0) fail(`pool ${i}: sentinel at ${hex(sentinel)} has header ${hex(shdr)}`);
    if (((shdr & PREV_USED) !== 0) !== prevUsed) {
      fail(`pool ${i}: sentinel at ${hex(sentinel)} has PREV_USED ${(shdr & PREV_USED) !== 0} but the last block is ${prevUsed ? 'live' : 'free'}`);
    }
  }
  // The free list: address-ordered, doubly linked, acyclic, and exactly the free blocks.
  const freeCount = heap.counters.freeBlocks;
  let listed = 0;
  let prev = 0;
  let b = u32[heap.sHead]!;
  while (b !== 0) {
    if (listed >= freeSet.size || listed >= freeCount) {
      fail(`free list is longer than the ${freeSet.size} free blocks found (a cycle or a stray entry) at ${hex(b)}`);
    }
    if (!freeSet.has(b)) fail(`free list entry ${hex(b)} (after ${hex(prev)}) is not a free block of any pool`);
    if (b <= prev) fail(`free list is not in address order: ${hex(b)} follows ${hex(prev)}`);
    const back = u32[(b + B_PREV) >>> 2]!;
    if (back !== prev) fail(`free block ${hex(b)}: previous link ${hex(back)} should be ${hex(prev)}`);
    listed++;
    prev = b;
    b = u32[(b + B_NEXT) >>> 2]!;
  }
  if (listed !== freeSet.size) fail(`free list holds ${listed} blocks but the pools hold ${freeSet.size} free blocks`);
  const mismatch = heap.counters.mismatch({
    freeBlocks: freeSet.size,
    liveBlocks: live,
    usedBytes: used,
    requestedBytes: requested,
    grantedBytes: granted,
    totalBytes: total,
  });
  if (mismatch !== null) fail(`counter ${mismatch}`);
  return { blocks, liveBlocks: live, freeBlocks: freeSet.size, usedBytes: used, freeBytes, pools: poolCount };
}
