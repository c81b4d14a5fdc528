/**
 * Checked mode (`BackendContext.checked`, `HEAPLAB_CHECKED=1`): each operation verifies the
 * invariants of what it touches and raises `HeapCorrupted` at the first broken one. In this
 * mode malloc and free take their slow variants (`MiContext.slowPaths`), which call these;
 * the default mode pays one field test for the whole of it.
 *
 * - a pop (`popBlock`): the block and its link are extended blocks of the page, on its grid,
 *   and the block still carries its freed marker;
 * - a local free: the page's descriptor is sound and it has a block in use to free;
 * - whenever a page changes state (collected, full, out of the full queue, emptied, retired
 *   or held): `used + |free| + |local_free| = capacity` (invariant 1 of `layout.ts`), with
 *   every block of those lists on the grid and marked, and thread_free no longer than
 *   `used`. Each costs a walk of the page's lists, bounded by its capacity.
 */

import { type AllocError, heapCorrupted, hex } from '@heaplab/core/backend';

import type { MiContext } from './context.js';
import { readLink } from './internal.js';
import {
  BACKEND_NAME,
  BLOCK_MARKER,
  DELAYED_MASK,
  PG_BIN,
  PG_BLOCK_SIZE,
  PG_CAPACITY,
  PG_EXTENT,
  PG_FREE,
  PG_LOCAL_FREE,
  PG_RESERVED,
  PG_START,
  PG_THREAD_FREE,
  PG_USED,
} from './layout.js';
import { freedMarker } from './secure.js';
import { BIN_BLOCK_SIZE, BIN_MAX } from './size-classes.js';

function corrupt(page: number, what: string): AllocError {
  return heapCorrupted(BACKEND_NAME, `checked mode: page ${hex(page)}: ${what}`);
}

/** The descriptor's geometry agrees with itself: bin, block size, extent, capacity. */
function checkDescriptor(t: MiContext, page: number): void {
  const u32 = t.u32;
  const w = page >>> 2;
  const bin = u32[w + (PG_BIN >>> 2)]!;
  const blockSize = u32[w + (PG_BLOCK_SIZE >>> 2)]!;
  const capacity = u32[w + (PG_CAPACITY >>> 2)]!;
  if (bin < 1 || bin > BIN_MAX || blockSize !== BIN_BLOCK_SIZE[bin]) throw corrupt(page, `bin ${bin} and block size ${blockSize} disagree`);
  if (capacity > u32[w + (PG_RESERVED >>> 2)]! || u32[w + (PG_EXTENT >>> 2)] !== capacity * blockSize) {
    throw corrupt(page, `capacity ${capacity}, extent ${u32[w + (PG_EXTENT >>> 2)]} and reserved ${u32[w + (PG_RESERVED >>> 2)]} disagree`);
  }
  if (u32[w + (PG_USED >>> 2)]! > capacity) throw corrupt(page, `${u32[w + (PG_USED >>> 2)]} blocks in use of ${capacity}`);
}

/** Checked mode, before a local free: a sound descriptor with a block in use to free. */
export function checkLocalFree(t: MiContext, page: number): void {
  checkDescriptor(t, page);
  if (t.u32[(page + PG_USED) >>> 2] === 0) throw corrupt(page, 'a block is freed but none is in use');
}

/** Checked mode, at a pop: `block` heads the page's free list. */
export function checkPop(t: MiContext, page: number, block: number): void {
  checkDescriptor(t, page);
  if (!isBlock(t, page, block)) throw corrupt(page, `its free list starts at ${hex(block)}, no block of the page`);
}

/** Checked mode, when a page changes state: its counts add up (see the file comment). */
export function checkPageCounts(t: MiContext, page: number): void {
  checkDescriptor(t, page);
  const u32 = t.u32;
  const w = page >>> 2;
  const capacity = u32[w + (PG_CAPACITY >>> 2)]!;
  const free = listLength(t, page, u32[w + (PG_FREE >>> 2)]!, 'free', true);
  const local = listLength(t, page, u32[w + (PG_LOCAL_FREE >>> 2)]!, 'local_free', true);
  const used = u32[w + (PG_USED >>> 2)]!;
  if (used + free + local !== capacity) throw corrupt(page, `used ${used} + free ${free} + local_free ${local} != capacity ${capacity}`);
  const word = Atomics.load(u32, w + (PG_THREAD_FREE >>> 2));
  const remote = listLength(t, page, word - (word & DELAYED_MASK), 'thread_free', false);
  if (remote > used) throw corrupt(page, `${remote} blocks on thread_free but ${used} in use`);
}

/** Whether `block` is an extended block of `page`. */
function isBlock(t: MiContext, page: number, block: number): boolean {
  const u32 = t.u32;
  const w = page >>> 2;
  const at = (block - u32[w + (PG_START >>> 2)]!) >>> 0;
  return at < u32[w + (PG_EXTENT >>> 2)]! && at % u32[w + (PG_BLOCK_SIZE >>> 2)]! === 0;
}

/**
 * Length of one list of `page`: every block an extended block, marked freed when `marked`
 * (thread_free is walked from a snapshot that its owner may take meanwhile, so only its
 * shape is checked), and no more of them than the page has.
 */
function listLength(t: MiContext, page: number, head: number, what: string, marked: boolean): number {
  const capacity = t.u32[(page + PG_CAPACITY) >>> 2]!;
  let count = 0;
  for (let block = head; block !== 0; block = readLink(t, page, block)) {
    if (!isBlock(t, page, block)) throw corrupt(page, `its ${what} list holds ${hex(block)}, no block of the page`);
    if (marked && t.i32[(block + BLOCK_MARKER) >>> 2] !== freedMarker(block, t.cookie)) {
      throw corrupt(page, `free block ${hex(block)} on its ${what} list lost its freed marker (a write after free?)`);
    }
    if (++count > capacity) throw corrupt(page, `its ${what} list is longer than its ${capacity} blocks (a cycle)`);
  }
  return count;
}
