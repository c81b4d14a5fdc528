/**
 * Allocation (mimalloc's alloc.c and the generic path of page.c): the fast path pops the free
 * list of the page the direct table names; everything else goes through `mallocGeneric`,
 * which does the heap's housekeeping (heartbeat, deferred free, delayed frees, retired pages)
 * and finds or makes a page with a free block.
 */

import { type MiContext, reachStep } from './context.js';
import { delayedFreePartial } from './delayed.js';
import { addEvent } from './events.js';
import { callDeferredFree, heapCollect, notePageTake } from './heap.js';
import { pageCancelHold, releaseHeldPages } from './held-pages.js';
import { queueMoveToFront, queueOf, queuePushFront } from './page-queue.js';
import { collectRetired, pageCollect, retiredDue, pageExtend, pageInit, pageToFull } from './page.js';
import { corruptedFreeList, decodeLink, freedMarker, overwrittenFreeBlock } from './secure.js';
import { hugeAlloc, pageShiftOf, pageSlotAlloc, reclaimAbandoned } from './segment.js';
import {
  BIN_BLOCK_SIZE,
  binForAligned,
  binOfSize,
  LARGE_OBJ_SIZE_MAX,
  segmentKindFor,
} from './size-classes.js';
import {
  BLOCK_ALIGN,
  HeapEvent,
  HP_HEARTBEAT,
  HP_HELD_FIRST,
  PG_BLOCK_SIZE,
  PG_CAPACITY,
  PG_FREE,
  PG_KEY0,
  PG_KEY1,
  PG_NEXT,
  PG_RESERVED,
  PG_RETIRE,
  PG_START,
  PG_USED,
  QUEUE_FIRST,
  SMALL_DIRECT_MAX,
} from './types.js';

/**
 * Allocates `size` bytes aligned to `align` for this thread. The fast path: a request of up
 * to 1 KiB with the default alignment reads the direct table, pops the page's free list,
 * counts the block in the page and clears its freed marker. Returns 0 when nothing fits.
 */
export function mallocFast(t: MiContext, size: number, align: number): number {
  if (size <= SMALL_DIRECT_MAX && align <= BLOCK_ALIGN && !t.slowPaths) {
    // int32 arithmetic and `>>>` word indices, as in `freeBlock`.
    const i32 = t.i32;
    const w = i32[t.direct + ((size + 7) >>> 3)]! >>> 2;
    const block = i32[w + (PG_FREE >>> 2)]!;
    if (block !== 0) {
      i32[w + (PG_FREE >>> 2)] = i32[block >>> 2]!;
      i32[w + (PG_USED >>> 2)] = (i32[w + (PG_USED >>> 2)]! + 1) | 0;
      i32[(block >>> 2) + 1] = 0;
      return block >>> 0;
    }
  }
  return mallocGeneric(t, size, align);
}

/**
 * Pops the first block of `page`'s free list (which must not be empty) and counts it. In
 * secure mode the link is decoded and checked against the page's block grid, and the
 * block's freed marker must still be there.
 * @throws AllocError `HeapCorrupted` in secure mode for a corrupted link or a block written
 *   after free
 */
export function popBlock(t: MiContext, page: number): number {
  const u32 = t.u32;
  const w = page >>> 2;
  const block = u32[w + (PG_FREE >>> 2)]!;
  const blockSize = u32[w + (PG_BLOCK_SIZE >>> 2)]!;
  let next = u32[block >>> 2]!;
  if (t.secure) {
    next = decodeLink(next, u32[w + (PG_KEY0 >>> 2)]!, u32[w + (PG_KEY1 >>> 2)]!);
    if (next !== 0) {
      const at = next - u32[w + (PG_START >>> 2)]!;
      if (at < 0 || at >= u32[w + (PG_CAPACITY >>> 2)]! * blockSize || at % blockSize !== 0) {
        throw corruptedFreeList(page, block, next);
      }
    }
    if (t.i32[(block + 4) >>> 2] !== freedMarker(block, t.cookie)) throw overwrittenFreeBlock(page, block);
  }
  u32[w + (PG_FREE >>> 2)] = next;
  reachStep(t, 'malloc:popped');
  u32[w + (PG_USED >>> 2)] = u32[w + (PG_USED >>> 2)]! + 1;
  reachStep(t, 'malloc:counted');
  t.i32[(block + 4) >>> 2] = 0;
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
  if (t.qsbr !== null && u32[(heap + HP_HELD_FIRST) >>> 2] !== 0) releaseHeldPages(t, heap, false);
  if (size > LARGE_OBJ_SIZE_MAX) return allocHuge(t, size, align);
  const bin = align <= BLOCK_ALIGN ? binOfSize(size) : binForAligned(size, align);
  if (bin === 0) return allocHuge(t, size, align);
  // Above the direct table every request comes here: take the first page when it can serve.
  const first = u32[(queueOf(heap, bin) + QUEUE_FIRST) >>> 2]!;
  if (first !== 0 && u32[(first + PG_FREE) >>> 2] !== 0) return popBlock(t, first);
  addEvent(t, heap, HeapEvent.slowPath);
  let page = findFreePage(t, heap, bin);
  if (page === 0) {
    heapCollect(t, true);
    page = findFreePage(t, heap, bin);
    if (page === 0) return 0;
  }
  return popBlock(t, page);
}

function allocHuge(t: MiContext, size: number, align: number): number {
  let block = hugeAlloc(t, size, align);
  if (block === 0 && size <= t.arenaEnd - t.arenaStart) {
    heapCollect(t, true);
    block = hugeAlloc(t, size, align);
  }
  if (block !== 0) notePageTake(t);
  return block;
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
    while (page !== 0) {
      const next = u32[(page + PG_NEXT) >>> 2]!;
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
