/**
 * Releasing the heap of a thread that died (`releaseThread(id, true)`): the thread may have
 * died at any store of its own paths (a local free, a malloc, a page moving between queues,
 * a retire or hold, a collect of thread_free, a drain of its delayed list, an extension, a
 * reclaim), so nothing it links is trusted: not its queues, not its held list, not the
 * free lists or counts of its pages. Every page of every segment it owns is rebuilt from
 * what the blocks themselves record, and the segments are given back or abandoned.
 *
 * A page's free blocks are exactly those that carry their freed marker (`layout.ts`, "A
 * block"): every path writes the marker before a block joins any list, and malloc clears it
 * only when the block is handed out. So a block the dead thread had taken off a list but not
 * handed out (a collect or a pop cut short) still reads as free and comes back, and a block
 * it was freeing is free. The exceptions are named by records: a live thread's remote free
 * in flight, whose block it will push itself, is left to it. A live block whose data
 * happens to equal its marker (one chance in 2^32 for random data) would be taken for
 * free: the same bet every free makes (see "Double-free detection").
 */

import { heapCorrupted, hex, sequenceReached } from '@heaplab/core/backend';

import { publishAbandoned } from './abandoned.js';
import type { MiContext } from './context.js';
import { setDelayedComplete } from './delayed.js';
import { heapReset } from './heap.js';
import { heldRecordWord } from './held-pages.js';
import { clearPage, isPagedKind, pageDescriptor, pageShiftOf, pageStartFor } from './internal.js';
import {
  BACKEND_NAME,
  BLOCK_MARKER,
  DELAYED_MASK,
  HELD_RECORD_BYTES,
  HP_DELAYED_FREE,
  HP_DRAINS,
  HP_RF_PAGE,
  HP_RF_STEP,
  HR_GOAL,
  HR_NEXT,
  HR_PREV,
  MAP_KIND_MASK,
  NEVER_DELAYED_FREE,
  PAGE_ALIGNED,
  PAGE_DESCRIPTOR_SHIFT,
  PAGE_IN_USE,
  PG_BIN,
  PG_BLOCK_SIZE,
  PG_CAPACITY,
  PG_COLLECTS,
  PG_EXTENT,
  PG_FLAGS,
  PG_FREE,
  PG_KEY0,
  PG_KEY1,
  PG_LOCAL_FREE,
  PG_NEXT,
  PG_OWNER,
  PG_PREV,
  PG_RESERVED,
  PG_RETIRE,
  PG_START,
  PG_THREAD_FREE,
  PG_USED,
  RF_CODE_MASK,
  SEGMENT_BYTES,
  SEGMENT_SHIFT,
  SG_NEXT,
  SG_OWNER,
  SG_PAGES,
  SG_PREV,
  SG_USED_PAGES,
} from './layout.js';
import { recordLive, resolveRemoteFree } from './remote.js';
import { bufferedBlocks } from './remote-buffer.js';
import { decodeLink, encodeLink, freedMarker } from './secure.js';
import { releaseCachedSegment, segmentRelease } from './segment.js';
import { BIN_BLOCK_SIZE, BIN_MAX, segmentKindFor } from './size-classes.js';

/** What the release found, for the reaper's report. */
export interface DeadHeapRepair {
  pages: number;
  /** Free blocks no list held (the dead thread held them between two stores). */
  recoveredBlocks: number;
  segmentsAbandoned: number;
  segmentsReleased: number;
  /** Held pages kept with a goal ahead of the write sequence (a deferred goal). */
  deferredGoals: number;
}

/**
 * Releases the heap of dead thread `threadId`: every page of its segments is rebuilt, empty
 * pages are freed (or, with delayed page reuse, held with a goal), its segments are given
 * back when empty and abandoned otherwise, and its heap record is reset.
 * @throws AllocError `LockTimeout` when a live thread's remote free into one of its pages
 *   never leaves `DELAYED_FREEING`; `HeapCorrupted` for a page descriptor that no step of
 *   any path leaves (its blocks cannot be told apart)
 */
export function heapAbandonDead(t: MiContext, threadId: number): DeadHeapRepair {
  const u32 = t.u32;
  const heap = t.heapOf(threadId);
  const repair: DeadHeapRepair = { pages: 0, recoveredBlocks: 0, segmentsAbandoned: 0, segmentsReleased: 0, deferredGoals: 0 };
  releaseCachedSegment(t, heap);
  const segments: number[] = [];
  for (let index = t.mapIndexStart; index < t.mapIndexEnd; index++) {
    if (!isPagedKind(u32[t.segmentMap + index]! & MAP_KIND_MASK)) continue;
    const segment = index * SEGMENT_BYTES;
    if (Atomics.load(u32, (segment + SG_OWNER) >>> 2) === threadId) segments.push(segment);
  }
  // No remote free may reach the delayed list any more (each claim is waited for, or
  // finished when its claimer is dead), so the list can be emptied; its blocks carry their
  // markers and come back with their pages.
  for (const segment of segments) {
    forEachPage(t, segment, (page) => {
      if ((u32[(page + PG_FLAGS) >>> 2]! & PAGE_IN_USE) !== 0) setDelayedComplete(t, page, NEVER_DELAYED_FREE, true);
    });
  }
  const drains = (heap + HP_DRAINS) >>> 2;
  if ((Atomics.load(u32, drains) & 1) !== 0) Atomics.add(u32, drains, 1);
  Atomics.add(u32, drains, 1);
  Atomics.store(u32, (heap + HP_DELAYED_FREE) >>> 2, 0);
  Atomics.add(u32, drains, 1);

  for (const segment of segments) {
    let inUse = 0;
    forEachPage(t, segment, (page) => {
      if ((u32[(page + PG_FLAGS) >>> 2]! & PAGE_IN_USE) === 0 || !rebuildPage(t, segment, page, repair)) {
        clearPage(u32, page);
        clearHeldRecord(t, page);
        return;
      }
      repair.pages++;
      inUse++;
    });
    u32[(segment + SG_USED_PAGES) >>> 2] = inUse;
    u32[(segment + SG_NEXT) >>> 2] = 0;
    u32[(segment + SG_PREV) >>> 2] = 0;
    if (inUse === 0) {
      segmentRelease(t, segment);
      repair.segmentsReleased++;
      continue;
    }
    forEachPage(t, segment, (page) => {
      if ((u32[(page + PG_FLAGS) >>> 2]! & PAGE_IN_USE) !== 0) Atomics.store(u32, (page + PG_OWNER) >>> 2, 0);
    });
    publishAbandoned(t, heap, segment);
    repair.segmentsAbandoned++;
  }
  // Held pages keep their goals; a deferred one the dead thread gave (layout.ts, "Delayed
  // page reuse") waits for an advance it will never make: made here, once.
  if (repair.deferredGoals > 0) t.qsbr!.advance();
  heapReset(t, threadId, false);
  return repair;
}

/** Calls `visit` with each page descriptor of the paged segment at `segment`. */
function forEachPage(t: MiContext, segment: number, visit: (page: number) => void): void {
  const pageCount = 2 ** (SEGMENT_SHIFT - pageShiftOf(t.mapOf(segment) & MAP_KIND_MASK));
  for (let index = 0; index < pageCount; index++) visit(pageDescriptor(segment, index));
}

/**
 * Rebuilds an in-use page of a dead heap from its blocks' markers: the free blocks become
 * its free list in address order, `used` the rest, thread_free is taken, and the page
 * leaves every queue and list. Returns false when its slot is to be given back: it never
 * got a block extended (a slot taken or formatted by a thread that died first), or it is
 * empty without delayed page reuse. An empty page with it is held (invariant 6).
 */
function rebuildPage(t: MiContext, segment: number, page: number, repair: DeadHeapRepair): boolean {
  const u32 = t.u32;
  const w = page >>> 2;
  const capacity = u32[w + (PG_CAPACITY >>> 2)]!;
  if (capacity === 0) return false;
  const bin = u32[w + (PG_BIN >>> 2)]!;
  const blockSize = u32[w + (PG_BLOCK_SIZE >>> 2)]!;
  const kind = t.mapOf(segment) & MAP_KIND_MASK;
  const shift = pageShiftOf(kind);
  const index = (page - segment - SG_PAGES) >>> PAGE_DESCRIPTOR_SHIFT;
  const start = u32[w + (PG_START >>> 2)]!;
  if (
    bin < 1 ||
    bin > BIN_MAX ||
    blockSize !== BIN_BLOCK_SIZE[bin] ||
    segmentKindFor(blockSize) !== kind ||
    start !== pageStartFor(segment, index, shift, blockSize) ||
    u32[w + (PG_RESERVED >>> 2)] !== Math.floor((segment + (index + 1) * 2 ** shift - start) / blockSize) ||
    capacity > u32[w + (PG_RESERVED >>> 2)]!
  ) {
    throw heapCorrupted(
      BACKEND_NAME,
      `page ${hex(page)} of a dead thread has a descriptor no path leaves (bin ${bin}, block size ${blockSize}, capacity ${capacity})`,
    );
  }
  // A dead freer's remote free into this page, and its buffer of blocks of this page, are
  // finished first: their blocks are then on thread_free, or free by their markers.
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const rec = (t.heapOf(threadId) + HP_RF_STEP) >>> 2;
    const named = Atomics.load(u32, rec) !== 0 && u32[(t.heapOf(threadId) + HP_RF_PAGE) >>> 2] === page;
    if (!named && bufferedBlocks(t, threadId)?.page !== page) continue;
    if (!recordLive(t, threadId)) resolveRemoteFree(t, threadId);
  }
  // The markers, read atomically: a live freer writes its record (or its buffer's entry and
  // count) before its block's marker, so if the marker is seen here, the record (or the
  // buffer holding the block, until the compare-and-swap that pushes it) is seen below.
  const free = new Set<number>();
  for (let k = 0, block = start; k < capacity; k++, block += blockSize) {
    if (Atomics.load(t.i32, (block + BLOCK_MARKER) >>> 2) === freedMarker(block, t.cookie)) free.add(block);
  }
  const live = new Set<number>();
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const step = Atomics.load(u32, (t.heapOf(threadId) + HP_RF_STEP) >>> 2);
    if (step !== 0 && u32[(t.heapOf(threadId) + HP_RF_PAGE) >>> 2] === page) live.add(step - (step & RF_CODE_MASK));
    const buffered = bufferedBlocks(t, threadId);
    if (buffered !== null && buffered.page === page) for (const block of buffered.blocks) live.add(block);
  }
  // What remote frees pushed until now; pushes after this take stay on thread_free.
  const collects = w + (PG_COLLECTS >>> 2);
  if ((Atomics.load(u32, collects) & 1) !== 0) Atomics.add(u32, collects, 1);
  Atomics.add(u32, collects, 1);
  let head = 0;
  for (;;) {
    const word = Atomics.load(u32, w + (PG_THREAD_FREE >>> 2));
    if (Atomics.compareExchange(u32, w + (PG_THREAD_FREE >>> 2), word, NEVER_DELAYED_FREE) === word) {
      head = word - (word & DELAYED_MASK);
      break;
    }
  }
  Atomics.add(u32, collects, 1);
  const taken = new Set<number>();
  for (let at = head, steps = 0; at !== 0 && steps < capacity; steps++) {
    const offset = at - start;
    if (offset < 0 || offset >= capacity * blockSize || offset % blockSize !== 0) break;
    taken.add(at);
    free.add(at);
    const link = u32[at >>> 2]!;
    at = t.secure ? decodeLink(link, u32[w + (PG_KEY0 >>> 2)]!, u32[w + (PG_KEY1 >>> 2)]!) : link;
  }
  // A live freer's block not yet pushed (or buffered) is its to push.
  for (const block of live) if (!taken.has(block)) free.delete(block);

  const before = u32[w + (PG_CAPACITY >>> 2)]! - u32[w + (PG_USED >>> 2)]!;
  const blocks = [...free].sort((a, b) => a - b);
  const key0 = u32[w + (PG_KEY0 >>> 2)]!;
  const key1 = u32[w + (PG_KEY1 >>> 2)]!;
  for (let i = 0; i < blocks.length; i++) {
    const next = i + 1 < blocks.length ? blocks[i + 1]! : 0;
    u32[blocks[i]! >>> 2] = t.secure ? encodeLink(next, key0, key1) : next;
  }
  const used = capacity - blocks.length;
  if (blocks.length > before) repair.recoveredBlocks += blocks.length - before;
  const first = blocks.length === 0 ? 0 : blocks[0]!;
  u32[w + (PG_USED >>> 2)] = used;
  u32[w + (PG_EXTENT >>> 2)] = capacity * blockSize;
  u32[w + (PG_FLAGS >>> 2)] = PAGE_IN_USE | (u32[w + (PG_FLAGS >>> 2)]! & PAGE_ALIGNED);
  u32[w + (PG_NEXT >>> 2)] = 0;
  u32[w + (PG_PREV >>> 2)] = 0;
  u32[w + (PG_RETIRE >>> 2)] = 0;
  const record = heldRecordWord(t, page);
  u32[record + (HR_NEXT >>> 2)] = 0;
  u32[record + (HR_PREV >>> 2)] = 0;
  if (used === 0 && t.qsbr === null) return false;
  if (used === 0) {
    // Held across the abandon (invariant 6 of `layout.ts`): all its blocks on local_free.
    const goal = t.i32[record + (HR_GOAL >>> 2)]!;
    if (goal === 0) t.i32[record + (HR_GOAL >>> 2)] = t.qsbr!.advance();
    else if (!sequenceReached(t.qsbr!.writeSequence(), goal)) repair.deferredGoals++;
    u32[w + (PG_FREE >>> 2)] = 0;
    u32[w + (PG_LOCAL_FREE >>> 2)] = first;
  } else {
    t.i32[record + (HR_GOAL >>> 2)] = 0;
    u32[w + (PG_FREE >>> 2)] = first;
    u32[w + (PG_LOCAL_FREE >>> 2)] = 0;
  }
  return true;
}

/** Zeroes the held-page record of a page slot given back. */
function clearHeldRecord(t: MiContext, page: number): void {
  t.u32.fill(0, heldRecordWord(t, page), heldRecordWord(t, page) + HELD_RECORD_BYTES / 4);
}
