/**
 * Allocation (mimalloc's alloc.c and the generic path of page.c): the fast path pops the free
 * list of the page the direct table names; everything else goes through `mallocGeneric`,
 * which does the heap's housekeeping (heartbeat, deferred free, delayed frees, retired pages)
 * and finds or makes a page with a free block.
 */

import { reclaimAbandoned } from './abandoned.js';
import { checkPop } from './checked.js';
import { type MiContext, reachStep } from './context.js';
import { delayedFreePartial } from './delayed.js';
import { callDeferredFree, heapCollect } from './heap.js';
import { advanceDeferredGoals, pageCancelHold, releaseHeldPages } from './held-pages.js';
import { addEvent, countAlloc, HUGE_BIN_STAT, pageShiftOf } from './internal.js';
import {
  BLOCK_ALIGN,
  BLOCK_MARKER,
  BLOCK_MARKER_WORD,
  HeapEvent,
  HELD_LIMIT_BYTES,
  HP_HEARTBEAT,
  HP_HELD_BYTES,
  HP_HELD_FIRST,
  PAGE_ALIGNED,
  PG_BIN,
  PG_CAPACITY,
  PG_EXTENT,
  PG_FLAGS,
  PG_FREE,
  PG_GRID_INVERSE,
  PG_GRID_LIMIT,
  PG_GRID_SHIFT,
  PG_KEY0,
  PG_KEY1,
  PG_RESERVED,
  PG_RETIRE,
  PG_START,
  PG_USED,
  QUEUE_FIRST,
  SMALL_DIRECT_MAX,
} from './layout.js';
import { queueMoveToFront, queueNext, queueOf, queuePushFront } from './page-queue.js';
import { collectRetired, pageCollect, pageExtend, pageInit, pageToFull, retiredDue } from './page.js';
import { notePageTake } from './peak.js';
import { corruptedFreeList, decodeLink, freedMarker, overwrittenFreeBlock } from './secure.js';
import { hugeAlloc, pageSlotAlloc, releaseEveryCachedSegment } from './segment.js';
import { BIN_BLOCK_SIZE, binForAligned, binOfSize, LARGE_OBJ_SIZE_MAX, onBlockGrid, segmentKindFor } from './size-classes.js';

/**
 * Allocates `size` bytes aligned to `align` for this thread. The fast path: a request of up
 * to 1 KiB with the default alignment reads the direct table, pops the page's free list,
 * counts the block in the page and clears its freed marker. Returns 0 when nothing fits.
 *
 * The link it pops becomes the next block handed out, so it is checked first: one
 * subtraction and unsigned compare against the page's extent (`PG_EXTENT`, on the cache
 * line the pop reads anyway) keep a corrupted link (an overflow or a write after free into
 * a free block) from ever turning into an address outside the page's extended blocks; the
 * end of the list (0) fails the compare and is told apart only then. The grid and the
 * marker of the block are checked in checked and secure mode (`popBlock`).
 * @throws AllocError `HeapCorrupted` for a free-list link that leaves its page
 */
export function mallocFast(t: MiContext, size: number, align: number): number {
  if (size <= SMALL_DIRECT_MAX && align <= BLOCK_ALIGN) {
    // int32 arithmetic and `>>>` word indices, as in `freeBlock`.
    const i32 = t.i32;
    const w = i32[t.direct + ((size + 7) >>> 3)]! >>> 2;
    const block = i32[w + (PG_FREE >>> 2)]!;
    if (block !== 0) {
      const next = i32[block >>> 2]!;
      // Secure mode, checked mode and test hooks pop the same block with their checks, and
      // so does a link that leaves the page: `popBlock` checks it again and throws.
      // `=== true`: V8 does not track that the field holds a boolean, so a bare truth test
      // compiles to its generic form (false, '', undetectable, number and BigInt checks,
      // about ten instructions); a compare with `true` is one.
      if (t.slowPaths === true || ((next - i32[w + (PG_START >>> 2)]!) >>> 0 >= i32[w + (PG_EXTENT >>> 2)]! >>> 0 && next !== 0)) {
        return popBlock(t, (w << 2) >>> 0);
      }
      i32[w + (PG_FREE >>> 2)] = next;
      i32[w + (PG_USED >>> 2)] = (i32[w + (PG_USED >>> 2)]! + 1) | 0;
      i32[(block >>> 2) + BLOCK_MARKER_WORD] = 0;
      return block >>> 0;
    }
  }
  return mallocGeneric(t, size, align);
}

/**
 * Pops the first block of `page`'s free list (which must not be empty) and counts it. The
 * link is decoded in secure mode and must be an extended block of the page (on its grid)
 * or 0; in secure and checked mode the block must also still carry its freed marker.
 * @throws AllocError `HeapCorrupted` for a corrupted link, or (secure, checked) a block
 *   written after free
 */
export function popBlock(t: MiContext, page: number): number {
  const u32 = t.u32;
  const w = page >>> 2;
  const block = u32[w + (PG_FREE >>> 2)]!;
  if (t.checked) checkPop(t, page, block);
  let next = u32[block >>> 2]!;
  if (t.secure) next = decodeLink(next, u32[w + (PG_KEY0 >>> 2)]!, u32[w + (PG_KEY1 >>> 2)]!);
  if (next !== 0) {
    const at = (next - u32[w + (PG_START >>> 2)]!) >>> 0;
    if (
      at >= u32[w + (PG_EXTENT >>> 2)]! ||
      !onBlockGrid(at, u32[w + (PG_GRID_INVERSE >>> 2)]!, u32[w + (PG_GRID_SHIFT >>> 2)]!, u32[w + (PG_GRID_LIMIT >>> 2)]!)
    ) {
      throw corruptedFreeList(page, block, next);
    }
  }
  if ((t.secure || t.checked) && t.i32[(block + BLOCK_MARKER) >>> 2] !== freedMarker(block, t.cookie)) throw overwrittenFreeBlock(page, block);
  u32[w + (PG_FREE >>> 2)] = next;
  reachStep(t, 'malloc:popped');
  u32[w + (PG_USED >>> 2)] = u32[w + (PG_USED >>> 2)]! + 1;
  reachStep(t, 'malloc:counted');
  t.i32[(block + BLOCK_MARKER) >>> 2] = 0;
  if (t.countBins) countAlloc(t, u32[w + (PG_BIN >>> 2)]!);
  return block;
}

/**
 * The slow path (mimalloc's `_mi_malloc_generic`): housekeeping, then a page of the request's
 * bin with a free block, else a huge block. When the pool is exhausted it collects the
 * heap (retired pages, empty segments) and tries once more. Returns 0 when nothing fits.
 */
export function mallocGeneric(t: MiContext, size: number, align: number): number {
  const heap = t.heap;
  const u32 = t.u32;
  u32[(heap + HP_HEARTBEAT) >>> 2] = u32[(heap + HP_HEARTBEAT) >>> 2]! + 1;
  if (t.deferredFree !== null) callDeferredFree(t, false);
  delayedFreePartial(t, heap);
  if (retiredDue(u32, heap)) collectRetired(t, heap, false);
  if (t.qsbr !== null && u32[(heap + HP_HELD_FIRST) >>> 2] !== 0) releaseHeldPages(t, heap, u32[(heap + HP_HELD_BYTES) >>> 2]! > HELD_LIMIT_BYTES);
  if (size > LARGE_OBJ_SIZE_MAX) return allocHuge(t, size, align);
  const bin = align <= BLOCK_ALIGN ? binOfSize(size) : binForAligned(size, align);
  if (bin === 0) return allocHuge(t, size, align);
  // Above the direct table every request comes here: take the first page when it can serve.
  let page = u32[(queueOf(heap, bin) + QUEUE_FIRST) >>> 2]!;
  if (page === 0 || u32[(page + PG_FREE) >>> 2] === 0) {
    addEvent(t, heap, HeapEvent.slowPath);
    page = findFreePage(t, heap, bin);
    if (page === 0) {
      heapCollect(t, true);
      page = findFreePage(t, heap, bin);
      if (page === 0 && releaseHeldForSelf(t, heap)) page = findFreePage(t, heap, bin);
      if (page === 0) return 0;
    }
  }
  if (align > BLOCK_ALIGN && bin !== binOfSize(size)) u32[(page + PG_FLAGS) >>> 2] = u32[(page + PG_FLAGS) >>> 2]! | PAGE_ALIGNED;
  return popBlock(t, page);
}

function allocHuge(t: MiContext, size: number, align: number): number {
  let block = hugeAlloc(t, size, align);
  if (block === 0 && size <= t.arenaEnd - t.arenaStart) {
    heapCollect(t, true);
    block = hugeAlloc(t, size, align);
    if (block === 0 && releaseHeldForSelf(t, t.heap)) block = hugeAlloc(t, size, align);
  }
  if (block !== 0) {
    notePageTake(t);
    if (t.countBins) countAlloc(t, HUGE_BIN_STAT);
  }
  return block;
}

/**
 * With delayed page reuse, before an allocation fails: gives back the held pages whose goal
 * only this thread has not passed (invariant 7 of `layout.ts`), and the empty segments that
 * leaves. True when it gave back any.
 */
function releaseHeldForSelf(t: MiContext, heap: number): boolean {
  if (t.qsbr === null || t.u32[(heap + HP_HELD_FIRST) >>> 2] === 0) return false;
  // Deferred goals no other thread can pass before someone advances: advanced now, so the
  // pages the other threads keep back can go once they pass a quiescent point.
  advanceDeferredGoals(t);
  if (releaseHeldPages(t, heap, true, true) === 0) return false;
  releaseEveryCachedSegment(t);
  return true;
}

/**
 * A page of `bin` with a free block (mimalloc's `mi_page_queue_find_free_ex`): walks the
 * bin's queue collecting each page; a page with free blocks, or room to extend, is moved to
 * the front and returned; a page with neither goes to the full queue. With no page left it
 * reclaims an abandoned segment and looks again, then takes a fresh page.
 */
export function findFreePage(t: MiContext, heap: number, bin: number): number {
  const u32 = t.u32;
  for (let attempt = 0; ; attempt++) {
    let page = u32[(queueOf(heap, bin) + QUEUE_FIRST) >>> 2]!;
    for (let steps = 1; page !== 0; steps++) {
      const next = queueNext(t, page, steps);
      pageCollect(t, heap, page);
      if (u32[(page + PG_FREE) >>> 2] !== 0) break;
      if (u32[(page + PG_CAPACITY) >>> 2]! < u32[(page + PG_RESERVED) >>> 2]!) {
        pageExtend(t, heap, page);
        break;
      }
      if (!pageToFull(t, heap, page)) break;
      page = next;
    }
    if (page !== 0) {
      u32[(page + PG_RETIRE) >>> 2] = 0;
      // A held page is found only here (its `free` is 0): allocating from it ends the hold.
      if (t.qsbr !== null) pageCancelHold(t, heap, page);
      queueMoveToFront(t, heap, bin, page);
      return page;
    }
    if (attempt > 0 || !reclaimAbandoned(t, heap, t.threadId)) break;
  }
  return freshPage(t, heap, bin);
}

/** Takes a new page slot for `bin`, formats it, queues it first and extends it. */
function freshPage(t: MiContext, heap: number, bin: number): number {
  const kind = segmentKindFor(BIN_BLOCK_SIZE[bin]!);
  const page = pageSlotAlloc(t, heap, kind, t.threadId);
  if (page === 0) return 0;
  pageInit(t, heap, page, pageShiftOf(kind), bin, t.threadId);
  queuePushFront(t, heap, bin, page);
  pageExtend(t, heap, page);
  return page;
}
