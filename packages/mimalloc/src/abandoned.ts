/**
 * Abandon and reclaim of segments (mimalloc v1's `_mi_segment_abandon` and
 * `_mi_segment_try_reclaim_abandoned`): the abandoned list (`ST_ABANDONED`, under the segment
 * lock) holds the segments of heaps whose thread detached or died, and a thread that needs
 * a page adopts one. Reclaim sits above pages and held pages because it collects, queues
 * and holds the pages it adopts. Segment invariant 4 (in `segment.ts`) is kept here.
 */

import { heapCorrupted, hex } from '@heaplab/core/backend';

import { type MiContext, reachStep } from './context.js';
import { reclaimHeldPage } from './held-pages.js';
import { addEvent, clearPage, isPagedKind, pageCountOf, pageDescriptor, segmentKind } from './internal.js';
import {
  BACKEND_NAME,
  HeapEvent,
  IN_OP,
  IN_SEGMENT,
  INTENT_ABANDON,
  INTENT_RECLAIM,
  NO_DELAYED_FREE,
  PAGE_IN_USE,
  PG_BIN,
  PG_FLAGS,
  PG_OWNER,
  PG_USED,
  SEGMENT_MASK,
  segmentMagic,
  SG_MAGIC,
  SG_NEXT,
  SG_OWNER,
  SG_PREV,
  SG_USED_PAGES,
  ST_ABANDONED,
  ST_ABANDONED_COUNT,
} from './layout.js';
import { queuePushBack } from './page-queue.js';
import { collectThreadFree } from './page.js';
import { hasSlotList, intend, segmentRelease, slotListPush, slotListRemove } from './segment.js';
import { trySetDelayed } from './thread-free.js';

/**
 * Abandons a segment of the heap at `heap`: its pages (already collected, out of every queue,
 * in `NEVER_DELAYED_FREE`) lose their owner, and it joins the abandoned list (invariant 4).
 */
export function segmentAbandon(t: MiContext, heap: number, segment: number): void {
  const u32 = t.u32;
  const s = segment >>> 2;
  const kind = segmentKind(t, segment);
  const pageCount = pageCountOf(t, segment);
  if (hasSlotList(kind) && u32[s + (SG_USED_PAGES >>> 2)]! < pageCount) slotListRemove(t, heap, segment);
  for (let index = 0; index < pageCount; index++) {
    const page = pageDescriptor(segment, index);
    if ((u32[(page + PG_FLAGS) >>> 2]! & PAGE_IN_USE) === 0) continue;
    Atomics.store(u32, (page + PG_OWNER) >>> 2, 0);
    reachStep(t, 'abandon:page-disowned');
  }
  publishAbandoned(t, heap, segment);
  reachStep(t, 'abandon:published');
}

/**
 * The part of an abandon under the segment lock: the segment loses its owner and joins the
 * abandoned list (its pages are already ownerless and in `NEVER_DELAYED_FREE`).
 */
export function publishAbandoned(t: MiContext, heap: number, segment: number): void {
  const u32 = t.u32;
  const s = segment >>> 2;
  t.segmentLock.lock();
  try {
    // The list and its count are rebuilt from the owners by `recover`.
    intend(t, INTENT_ABANDON, segment, 1, heap);
    Atomics.store(u32, s + (SG_OWNER >>> 2), 0);
    reachStep(t, 'segment:abandon:disowned');
    const list = (t.state + ST_ABANDONED) >>> 2;
    u32[s + (SG_NEXT >>> 2)] = u32[list]!;
    u32[s + (SG_PREV >>> 2)] = 0;
    u32[list] = segment;
    Atomics.add(u32, (t.state + ST_ABANDONED_COUNT) >>> 2, 1);
    u32[t.intent + (IN_OP >>> 2)] = 0;
  } finally {
    t.segmentLock.unlock();
  }
  addEvent(t, heap, HeapEvent.segmentsAbandoned);
}

/**
 * Reclaims one abandoned segment for the heap at `heap` (thread `owner`), if there is one:
 * its pages are adopted (owner set, delayed frees allowed again, thread_free collected) and
 * queued in the heap, empty ones are freed, except, with delayed page reuse, those whose
 * goal is not reached, which stay held in this heap (invariant 6 of `layout.ts`). Returns
 * true when a segment was reclaimed.
 */
export function reclaimAbandoned(t: MiContext, heap: number, owner: number): boolean {
  const u32 = t.u32;
  const countWord = (t.state + ST_ABANDONED_COUNT) >>> 2;
  if (Atomics.load(u32, countWord) === 0) return false;
  let segment = 0;
  t.segmentLock.lock();
  try {
    // The list and its count are rebuilt from the owners by `recover`.
    intend(t, INTENT_RECLAIM, 0, 1, heap);
    const list = (t.state + ST_ABANDONED) >>> 2;
    segment = u32[list]!;
    if (segment !== 0) {
      // Links live in segment headers, past the 16 bytes an overflow reaches, but one that
      // does not lead to an abandoned segment is reported, not followed.
      const next = u32[(segment + SG_NEXT) >>> 2]!;
      if (!isAbandonedSegment(t, segment) || (next !== 0 && !isAbandonedSegment(t, next))) {
        throw heapCorrupted(BACKEND_NAME, `the abandoned list links ${hex(segment)} to ${hex(next)}, not abandoned segments`);
      }
      u32[t.intent + (IN_SEGMENT >>> 2)] = segment;
      u32[list] = next;
      reachStep(t, 'segment:reclaim:popped');
      u32[(segment + SG_NEXT) >>> 2] = 0;
      Atomics.sub(u32, countWord, 1);
      Atomics.store(u32, (segment + SG_OWNER) >>> 2, owner);
    }
    u32[t.intent + (IN_OP >>> 2)] = 0;
  } finally {
    t.segmentLock.unlock();
  }
  if (segment === 0) return false;
  const s = segment >>> 2;
  const pageCount = pageCountOf(t, segment);
  let usedPages = u32[s + (SG_USED_PAGES >>> 2)]!;
  for (let index = 0; index < pageCount; index++) {
    const page = pageDescriptor(segment, index);
    const w = page >>> 2;
    if ((u32[w + (PG_FLAGS >>> 2)]! & PAGE_IN_USE) === 0) continue;
    Atomics.store(u32, w + (PG_OWNER >>> 2), owner);
    reachStep(t, 'reclaim:adopting');
    trySetDelayed(t, page, NO_DELAYED_FREE, true, 0);
    collectThreadFree(t, heap, page);
    if (u32[w + (PG_USED >>> 2)] === 0 && (t.qsbr === null || !reclaimHeldPage(t, heap, page))) {
      clearPage(u32, page);
      usedPages--;
    } else {
      queuePushBack(t, heap, u32[w + (PG_BIN >>> 2)]!, page);
    }
  }
  u32[s + (SG_USED_PAGES >>> 2)] = usedPages;
  addEvent(t, heap, HeapEvent.segmentsReclaimed);
  if (usedPages === 0) segmentRelease(t, segment);
  else if (hasSlotList(segmentKind(t, segment)) && usedPages < pageCount) slotListPush(t, heap, segment);
  return true;
}

/** Whether `segment` is a paged segment in use (by the map and its magic) with no owner. */
export function isAbandonedSegment(t: MiContext, segment: number): boolean {
  return (
    (segment & SEGMENT_MASK) === 0 &&
    isPagedKind(segmentKind(t, segment)) &&
    t.u32[(segment + SG_MAGIC) >>> 2] === segmentMagic(segment, t.cookie) &&
    Atomics.load(t.u32, (segment + SG_OWNER) >>> 2) === 0
  );
}
