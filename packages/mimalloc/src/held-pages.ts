/**
 * Delayed page reuse (option `delayedPageReuse`), as CPython's free-threaded build does over
 * mimalloc (`_PyMem_mi_page_maybe_free`, `_PyMem_mi_page_clear_qsbr`,
 * `_PyMem_mi_heap_collect_qsbr`): a page that becomes empty is held with a QSBR goal on its
 * heap's held list, stays usable for its own size class, and is given back to its segment
 * only once `poll` says every thread passed the goal. Layout and invariants 5 to 7 are in
 * `layout.ts`. Every function here is called only when `t.qsbr` is not null.
 */

import { sequenceReached } from '@heaplab/core/backend';

import { type MiContext, reachStep } from './context.js';
import { readLink, writeLink } from './internal.js';
import {
  HELD_LIMIT_BYTES,
  HELD_RECORD_BYTES,
  HP_HELD_BYTES,
  HP_HELD_FIRST,
  HP_HELD_LAST,
  HP_HELD_PAGES,
  HR_GOAL,
  HR_NEXT,
  HR_PREV,
  MAX_SEGMENT_PAGES,
  PAGE_DESCRIPTOR_SHIFT,
  PG_BLOCK_SIZE,
  PG_CAPACITY,
  PG_FREE,
  PG_LOCAL_FREE,
  QSBR_DEFERRED_LIMIT,
  SEGMENT_MASK,
  SEGMENT_SHIFT,
  SG_PAGES,
} from './layout.js';
import { pageFree, pageUnfull } from './page.js';

/** Word index of the held-page record of the page whose descriptor is at `page`. */
export function heldRecordWord(t: MiContext, page: number): number {
  const slot = (page >>> SEGMENT_SHIFT) * MAX_SEGMENT_PAGES + (((page & SEGMENT_MASK) - SG_PAGES) >>> PAGE_DESCRIPTOR_SHIFT);
  return (t.heldPages + slot * HELD_RECORD_BYTES) >>> 2;
}

/** The page's QSBR goal; 0 when it is not held. */
export function heldGoal(t: MiContext, page: number): number {
  return t.i32[heldRecordWord(t, page) + (HR_GOAL >>> 2)]!;
}

/**
 * Holds a page of the heap at `heap` that just became empty: a fresh goal, its free blocks
 * all moved to `local_free` (so only the slow path, which cancels the hold, allocates from
 * it), and the tail of the held list. The page is not held already: it had a block in use
 * a moment ago, and allocating that block cancelled any hold.
 */
export function pageHold(t: MiContext, heap: number, page: number): void {
  pageUnfull(t, heap, page);
  freeListToLocal(t, page);
  reachStep(t, 'hold:emptied');
  heldLinkLast(t, heap, page, heldRecordWord(t, page), holdGoal(t, heap, page));
}

/**
 * The goal of a new hold of `page` by this thread's heap `heap` (layout.ts, "Delayed page
 * reuse"): an advance of the write sequence for the first hold after this thread's last
 * advance, and whenever the heap's held bytes pass `HELD_LIMIT_BYTES` with this page; the
 * deferred goal, with no write to shared memory, for the `QSBR_DEFERRED_LIMIT - 1` holds in
 * between.
 */
function holdGoal(t: MiContext, heap: number, page: number): number {
  if (t.deferralsLeft > 0 && t.u32[(heap + HP_HELD_BYTES) >>> 2]! + heldBytesOf(t, page) <= HELD_LIMIT_BYTES) {
    t.deferralsLeft--;
    t.deferredPending = true;
    return t.qsbr!.deferredGoal();
  }
  return advanceGoals(t);
}

/** Advances the write sequence for this thread's holds; returns the new goal. */
function advanceGoals(t: MiContext): number {
  t.deferralsLeft = QSBR_DEFERRED_LIMIT - 1;
  t.deferredPending = false;
  return t.qsbr!.advance();
}

/**
 * Makes this thread's deferred goals reachable (one advance) when it gave any since its last
 * advance: for collect, abandon and an allocation about to fail, after which the thread may
 * hold nothing for a long time (invariant 7 of `layout.ts`).
 */
export function advanceDeferredGoals(t: MiContext): void {
  if (t.deferredPending) advanceGoals(t);
}

/** Takes the page `heap` is about to allocate from off its held list, if it is held. */
export function pageCancelHold(t: MiContext, heap: number, page: number): void {
  const record = heldRecordWord(t, page);
  if (t.i32[record + (HR_GOAL >>> 2)] === 0) return;
  heldUnlink(t, heap, page, record);
  t.i32[record + (HR_GOAL >>> 2)] = 0;
}

/**
 * Gives back to their segments the held pages of `heap` whose goal every thread has passed
 * (they are empty: invariant 5). With `all` it looks at every page (collect, abandon, and
 * the slow path once the heap holds more than `HELD_LIMIT_BYTES`); without, it stops at the
 * first goal not reached (the slow path: one poll is enough while nothing is ready, as the
 * list is in goal order but for reclaimed pages). With `notSelf`, a goal that only this
 * thread has not passed counts as reached (invariant 7's exception: for an allocation that
 * would otherwise fail). Returns the number of pages given back.
 */
export function releaseHeldPages(t: MiContext, heap: number, all: boolean, notSelf = false): number {
  const u32 = t.u32;
  const qsbr = t.qsbr!;
  let released = 0;
  let page = u32[(heap + HP_HELD_FIRST) >>> 2]!;
  for (let steps = 0; page !== 0 && steps < t.pageSlots; steps++) {
    const record = heldRecordWord(t, page);
    const next = u32[record + (HR_NEXT >>> 2)]!;
    const goal = t.i32[record + (HR_GOAL >>> 2)]!;
    if (qsbr.poll(goal) || (notSelf && goalHeldBackBy(t, goal, t.threadId) === 0)) {
      released++;
      heldUnlink(t, heap, page, record);
      t.i32[record + (HR_GOAL >>> 2)] = 0;
      pageFree(t, heap, page);
    } else if (!all) {
      return released;
    }
    page = next;
  }
  return released;
}

/** Every thread online in core's QSBR domain that has not passed `goal` (for figures). */
export function goalHolders(t: MiContext, goal: number): number[] {
  const holders: number[] = [];
  const qsbr = t.qsbr!;
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const sequence = qsbr.sequenceOf(threadId);
    if (sequence !== 0 && !sequenceReached(sequence, goal)) holders.push(threadId);
  }
  return holders;
}

/**
 * The first thread, other than `except` (0 for none), that is online in core's QSBR domain
 * and has not passed `goal`, or 0 when none: who holds a held page back. Reads each
 * thread's published sequence (`Qsbr.sequenceOf`, 0 offline); a racy snapshot, for
 * decisions that only ever release less.
 */
export function goalHeldBackBy(t: MiContext, goal: number, except: number): number {
  const qsbr = t.qsbr!;
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    if (threadId === except) continue;
    const sequence = qsbr.sequenceOf(threadId);
    if (sequence !== 0 && !sequenceReached(sequence, goal)) return threadId;
  }
  return 0;
}

/**
 * Keeps an empty page of a heap being abandoned held through the abandon: a page not held
 * yet gets a goal now (it became empty now) and its free list moved to `local_free`; every
 * one leaves the list, which goes with the heap record, and keeps its goal for the
 * reclaiming heap (invariant 6).
 */
export function pageHoldAbandoned(t: MiContext, heap: number, page: number): void {
  const record = heldRecordWord(t, page);
  if (t.i32[record + (HR_GOAL >>> 2)] === 0) {
    freeListToLocal(t, page);
    t.i32[record + (HR_GOAL >>> 2)] = holdGoal(t, heap, page);
    reachStep(t, 'abandon:held-goal');
  }
  t.u32[record + (HR_NEXT >>> 2)] = 0;
  t.u32[record + (HR_PREV >>> 2)] = 0;
}

/**
 * Decides at reclaim what happens to an empty page of the segment `heap` adopts: false when
 * it may go back to its segment now (its goal is reached; its record is cleared), true when
 * it stays held, queued by the caller in its bin and linked here on `heap`'s held list with
 * its goal, or a fresh one for a page that emptied while abandoned (invariant 6).
 */
export function reclaimHeldPage(t: MiContext, heap: number, page: number): boolean {
  const record = heldRecordWord(t, page);
  const goal = t.i32[record + (HR_GOAL >>> 2)]!;
  if (goal !== 0 && t.qsbr!.poll(goal)) {
    t.i32[record + (HR_GOAL >>> 2)] = 0;
    return false;
  }
  freeListToLocal(t, page);
  heldLinkLast(t, heap, page, record, goal !== 0 ? goal : holdGoal(t, heap, page));
  return true;
}

/** Bytes a held page keeps from other size classes: its blocks (`HP_HELD_BYTES`). */
function heldBytesOf(t: MiContext, page: number): number {
  return t.u32[(page + PG_CAPACITY) >>> 2]! * t.u32[(page + PG_BLOCK_SIZE) >>> 2]!;
}

function heldLinkLast(t: MiContext, heap: number, page: number, record: number, goal: number): void {
  const u32 = t.u32;
  u32[(heap + HP_HELD_PAGES) >>> 2] = u32[(heap + HP_HELD_PAGES) >>> 2]! + 1;
  u32[(heap + HP_HELD_BYTES) >>> 2] = u32[(heap + HP_HELD_BYTES) >>> 2]! + heldBytesOf(t, page);
  const lastWord = (heap + HP_HELD_LAST) >>> 2;
  const last = u32[lastWord]!;
  t.i32[record + (HR_GOAL >>> 2)] = goal;
  reachStep(t, 'hold:linking');
  u32[record + (HR_NEXT >>> 2)] = 0;
  u32[record + (HR_PREV >>> 2)] = last;
  if (last !== 0) u32[heldRecordWord(t, last) + (HR_NEXT >>> 2)] = page;
  else u32[(heap + HP_HELD_FIRST) >>> 2] = page;
  u32[lastWord] = page;
}

function heldUnlink(t: MiContext, heap: number, page: number, record: number): void {
  const u32 = t.u32;
  u32[(heap + HP_HELD_PAGES) >>> 2] = u32[(heap + HP_HELD_PAGES) >>> 2]! - 1;
  u32[(heap + HP_HELD_BYTES) >>> 2] = u32[(heap + HP_HELD_BYTES) >>> 2]! - heldBytesOf(t, page);
  const next = u32[record + (HR_NEXT >>> 2)]!;
  const prev = u32[record + (HR_PREV >>> 2)]!;
  if (prev !== 0) u32[heldRecordWord(t, prev) + (HR_NEXT >>> 2)] = next;
  else u32[(heap + HP_HELD_FIRST) >>> 2] = next;
  if (next !== 0) u32[heldRecordWord(t, next) + (HR_PREV >>> 2)] = prev;
  else u32[(heap + HP_HELD_LAST) >>> 2] = prev;
  u32[record + (HR_NEXT >>> 2)] = 0;
  u32[record + (HR_PREV >>> 2)] = 0;
}

/**
 * Moves an empty page's `free` list onto `local_free`, leaving `free` 0. The two lists are
 * walked in step and the one that ends first is put in front of the other, so the cost is
 * the shorter list (a malloc/free loop on one page has a one-block `local_free`).
 */
function freeListToLocal(t: MiContext, page: number): void {
  const u32 = t.u32;
  const w = page >>> 2;
  const free = u32[w + (PG_FREE >>> 2)]!;
  if (free === 0) return;
  const local = u32[w + (PG_LOCAL_FREE >>> 2)]!;
  u32[w + (PG_FREE >>> 2)] = 0;
  if (local === 0) {
    u32[w + (PG_LOCAL_FREE >>> 2)] = free;
    return;
  }
  for (let a = free, b = local; ; ) {
    const afterA = readLink(t, page, a);
    if (afterA === 0) {
      writeLink(t, page, a, local);
      u32[w + (PG_LOCAL_FREE >>> 2)] = free;
      return;
    }
    const afterB = readLink(t, page, b);
    if (afterB === 0) {
      writeLink(t, page, b, free);
      return;
    }
    a = afterA;
    b = afterB;
  }
}
