/**
 * A heap's page queues: one doubly linked queue of page descriptors per bin, plus the full
 * queue, and the direct table that mirrors the first page of each small bin's queue
 * (invariant 4 of `layout.ts`). Only the heap's owner edits them.
 */

import { heapCorrupted, hex } from '@heaplab/core/backend';

import { type MiContext, reachStep } from './context.js';
import { isPageInUse } from './internal.js';
import {
  BACKEND_NAME,
  DIRECT_WSIZE_MAX,
  HP_DIRECT,
  HP_QUEUES,
  PAGE_IN_FULL,
  PG_BIN,
  PG_FLAGS,
  PG_NEXT,
  PG_PREV,
  QUEUE_BYTES,
  QUEUE_FIRST,
  QUEUE_LAST,
  SMALL_DIRECT_MAX,
} from './layout.js';
import { BIN_BLOCK_SIZE, BIN_FULL, firstWordsOfBin } from './size-classes.js';

/**
 * The page after `page` in its queue, for a walk at its `steps`-th page. Queue links live in
 * page descriptors, which no block overflows, but a walk still checks each one: it must be
 * a descriptor of a page in use, and a walk longer than the arena has page slots is a cycle.
 * @throws AllocError `HeapCorrupted` otherwise
 */
export function queueNext(t: MiContext, page: number, steps: number): number {
  const next = t.u32[(page + PG_NEXT) >>> 2]!;
  if ((next !== 0 && !isPageInUse(t, next)) || steps > t.pageSlots) {
    throw heapCorrupted(BACKEND_NAME, `a page queue links page ${hex(page)} to ${hex(next)}, which is no page in use (or the queue has a cycle)`);
  }
  return next;
}

/** Byte offset of queue `bin` of the heap record at `heap`. */
export function queueOf(heap: number, bin: number): number {
  return heap + HP_QUEUES + bin * QUEUE_BYTES;
}

/** The queue a page belongs in: the full queue when it is marked full, else its bin's. */
export function queueBinOf(t: MiContext, page: number): number {
  const u32 = t.u32;
  return (u32[(page + PG_FLAGS) >>> 2]! & PAGE_IN_FULL) !== 0 ? BIN_FULL : u32[(page + PG_BIN) >>> 2]!;
}

/**
 * Points the direct-table entries of `bin` at the first page of its queue (or the empty
 * page). Called whenever a small bin's first page may have changed.
 */
export function updateDirect(t: MiContext, heap: number, bin: number): void {
  const blockSize = BIN_BLOCK_SIZE[bin]!;
  if (bin === BIN_FULL || blockSize > SMALL_DIRECT_MAX) return;
  const u32 = t.u32;
  const first = u32[(queueOf(heap, bin) + QUEUE_FIRST) >>> 2]!;
  const page = first === 0 ? t.emptyPage : first;
  const direct = (heap + HP_DIRECT) >>> 2;
  const last = blockSize >>> 3;
  for (let wsize = firstWordsOfBin(bin); wsize <= last && wsize <= DIRECT_WSIZE_MAX; wsize++) u32[direct + wsize] = page;
}

/** Puts `page` at the front of queue `bin` (a fresh or reclaimed page is tried first). */
export function queuePushFront(t: MiContext, heap: number, bin: number, page: number): void {
  const u32 = t.u32;
  const q = queueOf(heap, bin);
  const first = u32[(q + QUEUE_FIRST) >>> 2]!;
  u32[(page + PG_NEXT) >>> 2] = first;
  u32[(page + PG_PREV) >>> 2] = 0;
  if (first !== 0) u32[(first + PG_PREV) >>> 2] = page;
  else u32[(q + QUEUE_LAST) >>> 2] = page;
  u32[(q + QUEUE_FIRST) >>> 2] = page;
  updateDirect(t, heap, bin);
}

/** Appends `page` to queue `bin`. */
export function queuePushBack(t: MiContext, heap: number, bin: number, page: number): void {
  const u32 = t.u32;
  const q = queueOf(heap, bin);
  const last = u32[(q + QUEUE_LAST) >>> 2]!;
  u32[(page + PG_PREV) >>> 2] = last;
  u32[(page + PG_NEXT) >>> 2] = 0;
  if (last !== 0) u32[(last + PG_NEXT) >>> 2] = page;
  else {
    u32[(q + QUEUE_FIRST) >>> 2] = page;
    updateDirect(t, heap, bin);
  }
  u32[(q + QUEUE_LAST) >>> 2] = page;
}

/** Takes `page` out of queue `bin`. */
export function queueRemove(t: MiContext, heap: number, bin: number, page: number): void {
  const u32 = t.u32;
  const q = queueOf(heap, bin);
  const next = u32[(page + PG_NEXT) >>> 2]!;
  const prev = u32[(page + PG_PREV) >>> 2]!;
  if (prev !== 0) u32[(prev + PG_NEXT) >>> 2] = next;
  else u32[(q + QUEUE_FIRST) >>> 2] = next;
  if (next !== 0) u32[(next + PG_PREV) >>> 2] = prev;
  else u32[(q + QUEUE_LAST) >>> 2] = prev;
  reachStep(t, 'queue:unlinked');
  u32[(page + PG_NEXT) >>> 2] = 0;
  u32[(page + PG_PREV) >>> 2] = 0;
  if (prev === 0) updateDirect(t, heap, bin);
}

/** Moves `page`, already in queue `bin`, to its front. */
export function queueMoveToFront(t: MiContext, heap: number, bin: number, page: number): void {
  if (t.u32[(queueOf(heap, bin) + QUEUE_FIRST) >>> 2] === page) return;
  queueRemove(t, heap, bin, page);
  queuePushFront(t, heap, bin, page);
}
