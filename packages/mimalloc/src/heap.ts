/**
 * The per-thread heap (mimalloc's heap.c and init.c): resetting a heap record for a new
 * thread, collection, the deferred-free callback, and abandoning a
 * heap's segments when its thread detaches or dies.
 */

import { reclaimAbandoned, segmentAbandon } from './abandoned.js';
import { type MiContext, reachStep } from './context.js';
import { delayedFreeAll, delayedFreePartial, setDelayedComplete } from './delayed.js';
import { advanceDeferredGoals, heldGoal, pageHold, pageHoldAbandoned, releaseHeldPages } from './held-pages.js';
import { addEvent, isPagedKind } from './internal.js';
import {
  DIRECT_WSIZE_MAX,
  EVENT_COUNT,
  HeapEvent,
  HP_ACTIVE,
  HP_DELAYED_FREE,
  HP_DELAYED_KEY0,
  HP_DELAYED_KEY1,
  HP_DIRECT,
  HP_EVENTS,
  HP_HEARTBEAT,
  HP_HELD_BYTES,
  HP_HELD_FIRST,
  HP_HELD_LAST,
  HP_HELD_PAGES,
  HP_MEDIUM_SEGMENTS,
  HP_QUEUES,
  HP_RANDOM,
  HP_RETIRE_DUE,
  HP_RETIRED_BINS,
  HP_SEGMENT_CACHE,
  HP_SMALL_SEGMENTS,
  MAP_KIND_MASK,
  NEVER_DELAYED_FREE,
  PAGE_IN_FULL,
  PG_FLAGS,
  PG_RETIRE,
  PG_USED,
  QUEUE_BYTES,
  QUEUE_FIRST,
  RETIRED_BIN_WORDS,
  SEGMENT_SHIFT,
  SG_OWNER,
} from './layout.js';
import { queueNext, queueOf } from './page-queue.js';
import { collectRetired, pageCollect, pageFree } from './page.js';
import { flushRemoteBuffer } from './remote.js';
import { nextRandom, randomSeed } from './secure.js';
import { releaseCachedSegment, releaseEveryCachedSegment } from './segment.js';
import { BIN_QUEUES } from './size-classes.js';

/**
 * Resets the heap record of thread `threadId` for a new thread: empty queues and direct table,
 * no delayed frees, no segments, a fresh random state, event counters cleared. (A record
 * holds no byte or block counter to keep: usedBytes is a walk, see `peak.ts`.)
 */
export function heapReset(t: MiContext, threadId: number, active: boolean): void {
  const u32 = t.u32;
  const heap = t.heapOf(threadId);
  const direct = (heap + HP_DIRECT) >>> 2;
  for (let wsize = 0; wsize <= DIRECT_WSIZE_MAX; wsize++) u32[direct + wsize] = t.emptyPage;
  u32.fill(0, (heap + HP_QUEUES) >>> 2, (heap + HP_QUEUES + BIN_QUEUES * QUEUE_BYTES) >>> 2);
  Atomics.store(u32, (heap + HP_DELAYED_FREE) >>> 2, 0);
  u32[(heap + HP_SMALL_SEGMENTS) >>> 2] = 0;
  u32[(heap + HP_MEDIUM_SEGMENTS) >>> 2] = 0;
  u32[(heap + HP_HEARTBEAT) >>> 2] = 0;
  u32[(heap + HP_RANDOM) >>> 2] = randomSeed(t.cookie, threadId);
  // The delayed list is empty here (a heap is reset at format and after its drain), so new
  // keys cannot strand an encoded link.
  const key0 = t.secure ? nextRandom(u32[(heap + HP_RANDOM) >>> 2]!) : 0;
  u32[(heap + HP_DELAYED_KEY0) >>> 2] = key0;
  u32[(heap + HP_DELAYED_KEY1) >>> 2] = t.secure ? nextRandom(key0) : 0;
  u32.fill(0, (heap + HP_RETIRED_BINS) >>> 2, ((heap + HP_RETIRED_BINS) >>> 2) + RETIRED_BIN_WORDS);
  u32[(heap + HP_SEGMENT_CACHE) >>> 2] = 0;
  u32[(heap + HP_RETIRE_DUE) >>> 2] = 0;
  u32[(heap + HP_HELD_FIRST) >>> 2] = 0;
  u32[(heap + HP_HELD_LAST) >>> 2] = 0;
  u32[(heap + HP_HELD_PAGES) >>> 2] = 0;
  u32[(heap + HP_HELD_BYTES) >>> 2] = 0;
  u32.fill(0, (heap + HP_EVENTS) >>> 2, ((heap + HP_EVENTS) >>> 2) + EVENT_COUNT);
  u32[(heap + HP_ACTIVE) >>> 2] = active ? 1 : 0;
}

/**
 * Calls this thread's deferred-free callback with the heartbeat, unless it is already
 * running (a malloc or free inside it must not call it again).
 */
export function callDeferredFree(t: MiContext, force: boolean): void {
  const callback = t.deferredFree;
  if (callback === null || t.deferredRunning) return;
  t.deferredRunning = true;
  try {
    addEvent(t, t.heap, HeapEvent.deferredCalls);
    callback(force, t.u32[(t.heap + HP_HEARTBEAT) >>> 2]!);
  } finally {
    t.deferredRunning = false;
  }
}

/**
 * Collects this thread's heap (mimalloc's `mi_heap_collect`): this thread's remote-free
 * buffer flushed, the deferred-free callback,
 * the delayed list (what is not contended: a block whose page a producer is claiming stays
 * for a later drain, even when `force`), with `force` the reclaim of every abandoned
 * segment, every page's thread_free and local_free, empty pages freed (retired ones too
 * when `force`), and with them any segment left empty, and with `force` every thread's
 * cached segment. With delayed page reuse, held pages whose goal is reached are freed, the
 * others stay held even when `force`, and pages found empty are held.
 *
 * It never waits for another thread: a forced collect is the out-of-memory retry of every
 * allocation, which must return 0 rather than wait on a producer stopped between its two
 * steps (one block on the delayed list is all such a wait could win). Only abandon and
 * detach drain completely.
 */
export function heapCollect(t: MiContext, force: boolean): void {
  const heap = t.heap;
  // This thread's buffered remote frees reach their pages, so their owners can reuse them.
  flushRemoteBuffer(t);
  callDeferredFree(t, force);
  delayedFreePartial(t, heap);
  // As mimalloc's forced collect: adopt every abandoned segment, so the empty pages of
  // threads that ended are given back below.
  if (force) while (reclaimAbandoned(t, heap, t.threadId));
  collectRetired(t, heap, force);
  const qsbr = t.qsbr;
  if (qsbr !== null) releaseHeldPages(t, heap, true);
  const u32 = t.u32;
  for (let bin = 1; bin < BIN_QUEUES; bin++) {
    let page = u32[(queueOf(heap, bin) + QUEUE_FIRST) >>> 2]!;
    for (let steps = 1; page !== 0; steps++) {
      const next = queueNext(t, page, steps);
      if (qsbr === null) {
        pageCollect(t, heap, page);
        if (u32[(page + PG_USED) >>> 2] === 0 && (force || u32[(page + PG_RETIRE) >>> 2] === 0)) pageFree(t, heap, page);
      } else if (heldGoal(t, page) === 0) {
        // A held page has nothing to collect, and collecting would refill its `free`.
        pageCollect(t, heap, page);
        if (u32[(page + PG_USED) >>> 2] === 0) pageHold(t, heap, page);
      }
      page = next;
    }
  }
  // The pages held above may have deferred goals: one advance lets the next collect, after
  // quiescent points, give them back (invariant 7 of `layout.ts`).
  if (qsbr !== null) advanceDeferredGoals(t);
  // Last: the pages freed above may have left an empty segment in this heap's cache, and
  // an idle thread's cache must not make this thread's allocation fail (invariant 3 of
  // `segment.ts`).
  if (force) releaseEveryCachedSegment(t);
  addEvent(t, heap, HeapEvent.collects);
}

/**
 * Abandons everything thread `threadId` owns (mimalloc's `_mi_heap_collect_abandon`), called
 * by that thread on detach or by another thread once it died. First every page of the heap
 * is switched to `NEVER_DELAYED_FREE`, waiting for producers mid-way, so no block can reach
 * the delayed list afterwards; the delayed list is then drained completely; every page is
 * collected and empty ones freed; the segments still holding live blocks are abandoned for
 * other threads to reclaim; and the heap record is reset for the id's next thread. With
 * delayed page reuse, held pages whose goal is reached are freed and every other empty page
 * goes with its segment, held (invariant 6 of `layout.ts`).
 * @throws AllocError `LockTimeout` when a producer never finishes its delayed free
 */
export function heapAbandon(t: MiContext, threadId: number): void {
  const u32 = t.u32;
  const heap = t.heapOf(threadId);
  for (let bin = 1; bin < BIN_QUEUES; bin++) {
    for (let page = u32[(queueOf(heap, bin) + QUEUE_FIRST) >>> 2]!, steps = 1; page !== 0; page = queueNext(t, page, steps++)) {
      setDelayedComplete(t, page, NEVER_DELAYED_FREE, false);
      reachStep(t, 'abandon:never-delayed');
    }
  }
  delayedFreeAll(t, heap);
  reachStep(t, 'abandon:drained');
  const qsbr = t.qsbr;
  if (qsbr !== null) {
    releaseHeldPages(t, heap, true);
    reachStep(t, 'abandon:held-polled');
  }
  for (let bin = 1; bin < BIN_QUEUES; bin++) {
    let page = u32[(queueOf(heap, bin) + QUEUE_FIRST) >>> 2]!;
    for (let steps = 1; page !== 0; steps++) {
      const next = queueNext(t, page, steps);
      if (qsbr === null || heldGoal(t, page) === 0) pageCollect(t, heap, page);
      if (u32[(page + PG_USED) >>> 2] === 0 && qsbr === null) {
        pageFree(t, heap, page);
      } else {
        if (qsbr !== null && u32[(page + PG_USED) >>> 2] === 0) pageHoldAbandoned(t, heap, page);
        // Out of the queue, not full: a reclaiming heap queues it by its bin.
        const w = page >>> 2;
        u32[w + (PG_FLAGS >>> 2)] = u32[w + (PG_FLAGS >>> 2)]! & ~PAGE_IN_FULL;
        u32[w + (PG_RETIRE >>> 2)] = 0;
        reachStep(t, 'abandon:page-left');
      }
      page = next;
    }
  }
  // The held pages go with their segments and keep their goals: deferred ones are made
  // reachable, as this thread will advance no more.
  if (qsbr !== null) advanceDeferredGoals(t);
  releaseCachedSegment(t, heap);
  const map = t.segmentMap;
  for (let index = t.mapIndexStart; index < t.mapIndexEnd; index++) {
    if (!isPagedKind(u32[map + index]! & MAP_KIND_MASK)) continue;
    const segment = index * 2 ** SEGMENT_SHIFT;
    if (Atomics.load(u32, (segment + SG_OWNER) >>> 2) === threadId) segmentAbandon(t, heap, segment);
  }
  reachStep(t, 'abandon:segments-done');
  heapReset(t, threadId, false);
}
