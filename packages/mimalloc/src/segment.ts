/**
 * Segments (mimalloc v1's segment.c): the pool of 4 MiB segments, segment headers and page
 * slots, the segment caches and huge blocks; abandon and reclaim are in `abandoned.ts`. The
 * pool, the segment map and the abandoned list are shared by all threads and change only
 * under the segment lock (the descriptor's `segments` lock); that lock is taken when a
 * segment is taken or given back, for huge blocks, and for the abandoned list, never per
 * block.
 *
 * Segment invariants:
 * 1. A segment is in use iff its map word is nonzero and its pool bit is set; its header
 *    magic is `segmentMagic(S, cookie)` exactly while it is in use.
 * 2. An owned small or medium segment with a free page slot is in its owner's free-slot
 *    list of that kind (`HP_SMALL_SEGMENTS` / `HP_MEDIUM_SEGMENTS`); a full one is in none.
 * 3. A segment with no page in use is given back to the pool, except one per thread: its
 *    heap's cache (`HP_SEGMENT_CACHE`, as mimalloc v1's per-thread segment cache), owned,
 *    formatted, on no list. A heap whose large blocks come and go then does not take and
 *    format a segment under the lock each time. Only the owner (or the thread abandoning
 *    the heap for it) fills the cache word, from 0 by compare-and-swap; the owner takes it
 *    by exchanging it for 0, any other thread only under the segment lock, giving the
 *    segment back before it lets go of the lock. So a forced collect, which every
 *    allocation runs before it reports the heap full, gives back every thread's cache: an
 *    idle thread's empty segment cannot make another thread's allocation fail. The owner
 *    also empties its cache at abandon and when it needs a segment of another kind. An
 *    empty heap holds no memory but its cache and its retired or held pages; those pages
 *    only it can free (see `RETIRE_CYCLES`).
 * 4. An abandoned segment (`SG_OWNER` = 0) is on the abandoned list, as are exactly the
 *    segments with owner 0; its pages have `PG_OWNER` = 0, `NEVER_DELAYED_FREE`, are in no
 *    queue and keep accepting remote frees on thread_free.
 */

import { AllocError, heapCorrupted } from '@heaplab/core/backend';

import { type MiContext, reachStep } from './context.js';
import { addEvent, clearPage, hugeBlockSegment, hugeUsable, notLiveBlock, pageCountOf, pageDescriptor, pageShiftOf, segmentKind } from './internal.js';
import {
  BACKEND_NAME,
  CACHE_RELEASING,
  HeapEvent,
  HP_MEDIUM_SEGMENTS,
  HP_SEGMENT_CACHE,
  HP_SMALL_SEGMENTS,
  IN_HEAP,
  IN_OP,
  IN_SEGMENT,
  IN_SPAN,
  INTENT_ALLOC,
  INTENT_CACHE,
  INTENT_RELEASE,
  MAP_KIND_MASK,
  MAP_SHIFT_BITS,
  PAGE_DESCRIPTOR_BYTES,
  PAGE_IN_USE,
  PG_COLLECTS,
  PG_FLAGS,
  SEGMENT_BYTES,
  SEGMENT_HEADER_BYTES,
  SEGMENT_HUGE,
  SEGMENT_HUGE_TAIL,
  SEGMENT_MASK,
  SEGMENT_MEDIUM,
  SEGMENT_SHIFT,
  SEGMENT_SMALL,
  segmentMagic,
  SG_HUGE_BLOCK,
  SG_HUGE_SIZE,
  SG_KIND,
  SG_MAGIC,
  SG_NEXT,
  SG_OWNER,
  SG_PAGE_COUNT,
  SG_PAGE_SHIFT,
  SG_PAGES,
  SG_PREV,
  SG_SPAN,
  SG_USED_PAGES,
} from './layout.js';
import { notePageTake } from './peak.js';

/**
 * Takes `span` contiguous segments from the pool for thread `owner` and formats the first
 * one's header (kind, page geometry, no page in use). Returns its address, or 0 when the
 * pool has no such run. `at`, when nonzero, asks for that exact address (aligned huge
 * blocks) and fails rather than throw when it is taken.
 */
export function segmentAlloc(t: MiContext, kind: number, span: number, owner: number, at = 0, hugeOffset = 0, hugeUsable = 0): number {
  const pool = t.pool;
  const u32 = t.u32;
  let segment = 0;
  t.segmentLock.lock();
  try {
    // Rolled back if this thread dies before the end: nobody received the segment.
    intend(t, INTENT_ALLOC, 0, span, 0);
    if (at !== 0) {
      segment = tryAllocAt(t, at, span);
    } else if (span === 1 ? pool.availablePages() >= 1 : pool.largestFreeRun() >= span) {
      segment = pool.allocPages(span, SEGMENT_BYTES);
    }
    if (segment === 0) {
      u32[t.intent + (IN_OP >>> 2)] = 0;
      return 0;
    }
    u32[t.intent + (IN_SEGMENT >>> 2)] = segment;
    reachStep(t, 'segment:alloc:taken');
    const shift = kind === SEGMENT_HUGE ? 0 : pageShiftOf(kind);
    const s = segment >>> 2;
    const pageCount = kind === SEGMENT_HUGE ? 0 : 2 ** (SEGMENT_SHIFT - shift);
    u32[s + (SG_KIND >>> 2)] = kind;
    u32[s + (SG_PAGE_SHIFT >>> 2)] = shift;
    u32[s + (SG_PAGE_COUNT >>> 2)] = pageCount;
    // A huge block is whole before the map names it: the walks find every huge block from
    // the map alone, so a thread that dies after the map store leaves a complete block.
    const huge = kind === SEGMENT_HUGE;
    u32[s + (SG_USED_PAGES >>> 2)] = huge ? 1 : 0;
    u32[s + (SG_NEXT >>> 2)] = 0;
    u32[s + (SG_PREV >>> 2)] = 0;
    u32[s + (SG_SPAN >>> 2)] = span;
    u32[s + (SG_HUGE_BLOCK >>> 2)] = huge ? segment + hugeOffset : 0;
    u32[s + (SG_HUGE_SIZE >>> 2)] = huge ? hugeUsable : 0;
    // Old contents (another segment's descriptors, user data) must not pass for pages. Each
    // page's PG_COLLECTS is kept: it must never go back to a value a dead freer's record may
    // hold (invariant 11 of `layout.ts`).
    for (let page = segment + SG_PAGES, end = page + pageCount * PAGE_DESCRIPTOR_BYTES; page < end; page += PAGE_DESCRIPTOR_BYTES) {
      const collects = u32[(page + PG_COLLECTS) >>> 2]!;
      u32.fill(0, page >>> 2, (page + PAGE_DESCRIPTOR_BYTES) >>> 2);
      u32[(page + PG_COLLECTS) >>> 2] = (collects + 1) & ~1;
    }
    Atomics.store(u32, s + (SG_OWNER >>> 2), owner);
    u32[s + (SG_MAGIC >>> 2)] = segmentMagic(segment, t.cookie);
    reachStep(t, 'segment:alloc:formatted');
    // The map word last, stored atomically: a walk that loads it (usedBytes samples run
    // without the lock) then sees the header and the cleared descriptors, not old memory.
    const map = t.segmentMap + (segment >>> SEGMENT_SHIFT);
    for (let i = 1; i < span; i++) u32[map + i] = SEGMENT_HUGE_TAIL;
    Atomics.store(u32, map, kind | (shift << MAP_SHIFT_BITS));
    reachStep(t, 'segment:alloc:mapped');
    u32[t.intent + (IN_OP >>> 2)] = 0;
  } finally {
    t.segmentLock.unlock();
  }
  addEvent(t, t.heap, HeapEvent.segmentsAllocated);
  return segment;
}

/**
 * Writes the intent record (the segment lock is held): the operation last, so a record
 * with an operation names its segment (or 0) and span.
 */
export function intend(t: MiContext, op: number, segment: number, span: number, heap: number): void {
  const u32 = t.u32;
  u32[t.intent + (IN_SEGMENT >>> 2)] = segment;
  u32[t.intent + (IN_SPAN >>> 2)] = span;
  u32[t.intent + (IN_HEAP >>> 2)] = heap;
  u32[t.intent + (IN_OP >>> 2)] = op;
}

/** Takes the `span` segments at `at` if they are all free (under the segment lock), else 0. */
function tryAllocAt(t: MiContext, at: number, span: number): number {
  if (at < t.arenaStart || at + span * SEGMENT_BYTES > t.arenaEnd) return 0;
  for (let i = 0; i < span; i++) {
    if (t.u32[t.segmentMap + ((at >>> SEGMENT_SHIFT) + i)] !== 0) return 0;
  }
  try {
    return t.pool.allocPagesAt(at, span, SEGMENT_BYTES);
  } catch (error) {
    // Not managed (a hole between pools): this candidate does not fit. Only huge blocks
    // aligned to a segment or more come here, so the exception is off every common path.
    if (error instanceof AllocError) return 0;
    throw error;
  }
}

/** Gives a segment (and the rest of its span) back to the pool. */
export function segmentRelease(t: MiContext, segment: number): void {
  t.segmentLock.lock();
  try {
    releaseLocked(t, segment);
  } finally {
    t.segmentLock.unlock();
  }
}

/** `segmentRelease` for a caller that holds the segment lock; rolled forward if it dies. */
function releaseLocked(t: MiContext, segment: number): void {
  const span = t.u32[(segment + SG_SPAN) >>> 2]!;
  intend(t, INTENT_RELEASE, segment, span, 0);
  releaseSteps(t, segment, span);
  t.pool.deallocPages(segment, span);
  t.u32[t.intent + (IN_OP >>> 2)] = 0;
  // Counted in the heap of the thread giving it back, which may not be the owner's: event
  // counters are written by their own thread only.
  addEvent(t, t.heap, HeapEvent.segmentsFreed);
}

/**
 * The stores that take `span` segments at `segment` out of use, all but the pool's: the
 * header first (walks then skip it), the map last. `recover` repeats them for a thread that
 * died among them; each may be done twice.
 */
export function releaseSteps(t: MiContext, segment: number, span: number): void {
  const u32 = t.u32;
  const s = segment >>> 2;
  u32[s + (SG_MAGIC >>> 2)] = 0;
  u32[s + (SG_HUGE_BLOCK >>> 2)] = 0;
  Atomics.store(u32, s + (SG_OWNER >>> 2), 0);
  reachStep(t, 'segment:release:disowned');
  u32.fill(0, t.segmentMap + (segment >>> SEGMENT_SHIFT), t.segmentMap + (segment >>> SEGMENT_SHIFT) + span);
  reachStep(t, 'segment:release:unmapped');
}

// --- the owner's lists of segments with a free page slot -----------------------------------

function slotListOf(heap: number, kind: number): number {
  return heap + (kind === SEGMENT_SMALL ? HP_SMALL_SEGMENTS : HP_MEDIUM_SEGMENTS);
}

/** Links `segment` at the head of its kind's free-slot list of `heap`. */
export function slotListPush(t: MiContext, heap: number, segment: number): void {
  const u32 = t.u32;
  const list = slotListOf(heap, segmentKind(t, segment)) >>> 2;
  const head = u32[list]!;
  u32[(segment + SG_NEXT) >>> 2] = head;
  u32[(segment + SG_PREV) >>> 2] = 0;
  if (head !== 0) u32[(head + SG_PREV) >>> 2] = segment;
  u32[list] = segment;
}

/** Unlinks `segment` from its kind's free-slot list of `heap`. */
export function slotListRemove(t: MiContext, heap: number, segment: number): void {
  const u32 = t.u32;
  const next = u32[(segment + SG_NEXT) >>> 2]!;
  const prev = u32[(segment + SG_PREV) >>> 2]!;
  if (prev !== 0) u32[(prev + SG_NEXT) >>> 2] = next;
  else u32[slotListOf(heap, segmentKind(t, segment)) >>> 2] = next;
  if (next !== 0) u32[(next + SG_PREV) >>> 2] = prev;
  u32[(segment + SG_NEXT) >>> 2] = 0;
  u32[(segment + SG_PREV) >>> 2] = 0;
}

/** True when a segment of this kind is kept on a free-slot list (it has several pages). */
export function hasSlotList(kind: number): boolean {
  return kind === SEGMENT_SMALL || kind === SEGMENT_MEDIUM;
}

/**
 * Takes a free page slot of segment kind `kind` for the heap at `heap` (thread `owner`): from
 * an owned segment with a free slot, else a new segment. Returns the page descriptor, its
 * flags set to in use, or 0 when the pool is exhausted.
 */
export function pageSlotAlloc(t: MiContext, heap: number, kind: number, owner: number): number {
  const u32 = t.u32;
  let segment = hasSlotList(kind) ? u32[slotListOf(heap, kind) >>> 2]! : 0;
  if (segment === 0) {
    segment = takeCachedSegment(t, heap, kind);
    if (segment === 0) segment = segmentAlloc(t, kind, 1, owner);
    if (segment === 0) return 0;
    if (hasSlotList(kind)) slotListPush(t, heap, segment);
  }
  const s = segment >>> 2;
  const pageCount = pageCountOf(t, segment);
  let page = 0;
  for (let index = 0; index < pageCount; index++) {
    const candidate = pageDescriptor(segment, index);
    if ((u32[(candidate + PG_FLAGS) >>> 2]! & PAGE_IN_USE) === 0) {
      page = candidate;
      break;
    }
  }
  if (page === 0) {
    throw heapCorrupted(BACKEND_NAME, `segment ${segment.toString(16)} is on a free-slot list with no free page`);
  }
  // The count first: a walk in another thread (`liveTotals`) stops after that many pages in
  // use, and must not stop at this empty page before a live one.
  const used = u32[s + (SG_USED_PAGES >>> 2)]! + 1;
  u32[s + (SG_USED_PAGES >>> 2)] = used;
  reachStep(t, 'slot:counted');
  u32[(page + PG_FLAGS) >>> 2] = PAGE_IN_USE;
  if (used === pageCount && hasSlotList(kind)) slotListRemove(t, heap, segment);
  addEvent(t, heap, HeapEvent.pagesFresh);
  notePageTake(t);
  return page;
}

/**
 * Gives an empty page's slot back to its segment, owned by the heap at `heap`; the segment
 * goes back to the pool when that was its last page (invariant 3).
 */
export function pageSlotFree(t: MiContext, heap: number, page: number): void {
  const u32 = t.u32;
  clearPage(u32, page);
  reachStep(t, 'slot:cleared');
  const segment = page - (page & SEGMENT_MASK);
  const s = segment >>> 2;
  const kind = segmentKind(t, segment);
  const pageCount = pageCountOf(t, segment);
  const used = u32[s + (SG_USED_PAGES >>> 2)]! - 1;
  u32[s + (SG_USED_PAGES >>> 2)] = used;
  const listed = hasSlotList(kind);
  if (used === 0) {
    if (listed && pageCount > 1) slotListRemove(t, heap, segment);
    if (Atomics.compareExchange(u32, (heap + HP_SEGMENT_CACHE) >>> 2, 0, segment) !== 0) segmentRelease(t, segment);
  } else if (listed && used === pageCount - 1) {
    slotListPush(t, heap, segment);
  }
}

/**
 * The heap's cached segment when it is of `kind` (taken out of the cache), else 0; a cached
 * segment of another kind is given back to the pool. A segment that a holder of the
 * segment lock is giving back (tagged `CACHE_RELEASING`) is left to it.
 */
function takeCachedSegment(t: MiContext, heap: number, kind: number): number {
  const word = (heap + HP_SEGMENT_CACHE) >>> 2;
  const cached = Atomics.load(t.u32, word);
  if (cached === 0 || (cached & CACHE_RELEASING) !== 0) return 0;
  if (Atomics.compareExchange(t.u32, word, cached, 0) !== cached) return 0;
  if ((t.mapOf(cached) & MAP_KIND_MASK) === kind) return cached;
  segmentRelease(t, cached);
  return 0;
}

/**
 * Gives the cached segment of the heap at `heap`, if any, back to the pool. The exchange and
 * the release happen under one hold of the segment lock: a thread abandoning that heap
 * calls this first, so once it holds the lock no other thread is between taking the
 * segment and giving it back, and its walk of the map cannot abandon a segment that is
 * about to be freed.
 */
export function releaseCachedSegment(t: MiContext, heap: number): void {
  t.segmentLock.lock();
  try {
    releaseCacheLocked(t, heap);
  } finally {
    t.segmentLock.unlock();
  }
}

/** Gives every thread's cached segment back to the pool (invariant 3), under one lock hold. */
export function releaseEveryCachedSegment(t: MiContext): void {
  t.segmentLock.lock();
  try {
    for (let threadId = 1; threadId <= t.maxThreads; threadId++) releaseCacheLocked(t, t.heapOf(threadId));
  } finally {
    t.segmentLock.unlock();
  }
}

/**
 * `releaseCachedSegment` for a caller that holds the segment lock. The cache word is tagged
 * first (`CACHE_RELEASING`), so the owner, which takes its cache without the lock, never
 * takes a segment being given back, and a holder that dies here leaves the segment named
 * by the word (`recover` finishes the release).
 */
function releaseCacheLocked(t: MiContext, heap: number): void {
  const u32 = t.u32;
  const word = (heap + HP_SEGMENT_CACHE) >>> 2;
  const cached = Atomics.load(u32, word);
  if (cached === 0 || (cached & CACHE_RELEASING) !== 0) return;
  intend(t, INTENT_CACHE, cached, 1, heap);
  if (Atomics.compareExchange(u32, word, cached, cached + CACHE_RELEASING) !== cached) {
    u32[t.intent + (IN_OP >>> 2)] = 0;
    return;
  }
  reachStep(t, 'segment:cache:tagged');
  releaseSteps(t, cached, 1);
  t.pool.deallocPages(cached, 1);
  Atomics.store(u32, word, 0);
  u32[t.intent + (IN_OP >>> 2)] = 0;
  addEvent(t, t.heap, HeapEvent.segmentsFreed);
}

// --- huge blocks ------------------------------------------------------------------------------

/**
 * Allocates a huge block of `size` bytes aligned to `align` in contiguous segments of its
 * own. The block starts after the header (rounded up to `align`); an alignment of a segment
 * or more puts it at the start of the second segment of the span (so the span has at least
 * two), whose address must then be a multiple of `align`. Returns 0 when no run fits.
 */
export function hugeAlloc(t: MiContext, size: number, align: number): number {
  if (size > t.arenaEnd - t.arenaStart) return 0;
  let segment = 0;
  let offset: number;
  let span: number;
  if (align < SEGMENT_BYTES) {
    offset = SEGMENT_HEADER_BYTES % align === 0 ? SEGMENT_HEADER_BYTES : SEGMENT_HEADER_BYTES + align - (SEGMENT_HEADER_BYTES % align);
    span = Math.ceil((offset + size) / SEGMENT_BYTES);
  } else {
    // The block starts at the second segment of the span, which the span must include even
    // for size 0 (a span of one segment put the block past its end: never freeable).
    offset = SEGMENT_BYTES;
    span = 1 + Math.max(1, Math.ceil(size / SEGMENT_BYTES));
  }
  // Usable bytes never exceed span * SEGMENT_USABLE_BYTES, so usedBytes stays within
  // totalBytes however the arena is split; a size between that and the span's end takes
  // one more segment, so the block always holds what was asked.
  if (hugeUsable(span, offset) < size) span++;
  const usable = hugeUsable(span, offset);
  if (align < SEGMENT_BYTES) {
    segment = segmentAlloc(t, SEGMENT_HUGE, span, t.threadId, 0, offset, usable);
  } else {
    const firstBlock = Math.ceil((t.arenaStart + SEGMENT_BYTES) / align) * align;
    for (let block = firstBlock; block + size <= t.arenaEnd && segment === 0; block += align) {
      segment = segmentAlloc(t, SEGMENT_HUGE, span, t.threadId, block - SEGMENT_BYTES, offset, usable);
    }
  }
  if (segment === 0) return 0;
  addEvent(t, t.heap, HeapEvent.hugeAllocated);
  return segment + offset;
}

/**
 * Frees a huge block from any thread. Validation and release happen under the segment
 * lock, so two threads freeing the same block cannot both succeed.
 * @throws AllocError `NotAllocated` when no live huge block starts at `address`
 */
export function hugeFree(t: MiContext, address: number): void {
  let segment = 0;
  t.segmentLock.lock();
  try {
    segment = hugeBlockSegment(t, address);
    if (segment !== 0) releaseLocked(t, segment);
  } finally {
    t.segmentLock.unlock();
  }
  if (segment === 0) throw notLiveBlock(address, 'no block of this heap starts there');
  addEvent(t, t.heap, HeapEvent.hugeFreed);
}

// --- abandon and reclaim -----------------------------------------------------------------------
