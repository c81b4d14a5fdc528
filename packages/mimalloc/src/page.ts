/**
 * A page's life after its slot is taken: initialisation for a bin, lazy extension of the free
 * list, collection of `local_free` and `thread_free`, moving to and from the full queue, and
 * retirement when it empties (mimalloc's page.c). Page invariants are in `layout.ts`.
 */

import { heapCorrupted, hex } from '@heaplab/core/backend';

import { checkPageCounts } from './checked.js';
import { type MiContext, reachStep } from './context.js';
import { addEvent, pageStartFor, readLink, writeLink } from './internal.js';
import {
  BACKEND_NAME,
  BLOCK_MARKER,
  DELAYED_MASK,
  HeapEvent,
  HP_HEARTBEAT,
  HP_RANDOM,
  HP_RETIRE_DUE,
  HP_RETIRED_BINS,
  NO_DELAYED_FREE,
  PAGE_DESCRIPTOR_SHIFT,
  PAGE_IN_FULL,
  PAGE_IN_USE,
  PG_BIN,
  PG_BLOCK_SIZE,
  PG_CAPACITY,
  PG_COLLECTS,
  PG_EXTENT,
  PG_FLAGS,
  PG_FREE,
  PG_GRID_INVERSE,
  PG_GRID_LIMIT,
  PG_GRID_SHIFT,
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
  QUEUE_FIRST,
  QUEUE_LAST,
  RETIRED_BIN_WORDS,
  SEGMENT_MASK,
  SG_PAGES,
  USE_DELAYED_FREE,
} from './layout.js';
import { queueBinOf, queueOf, queuePushBack, queueRemove } from './page-queue.js';
import { coprimeStep, encodeLink, freedMarker, nextRandom } from './secure.js';
import { pageSlotFree } from './segment.js';
import { BIN_BLOCK_SIZE, BIN_FULL, blockGrid, onBlockGrid, SMALL_OBJ_SIZE_MAX } from './size-classes.js';
import { DELAYED_TRIES, trySetDelayed } from './thread-free.js';

/** Lazy extension adds at most this many bytes of blocks at a time (mimalloc's 4 KiB). */
export const EXTEND_BYTES = 4096;
/**
 * Slow-path calls a retired small page is kept for before it is freed. mimalloc keeps it for
 * 16; here taking a fresh page (slot search, formatting, extension) costs far more against
 * a fast path. In 2 seconds of bench-malloc-thread, 64 cycles took 31,000 fresh pages and
 * 256 took 4,400 (nearly all of them medium pages of the 32 KiB class).
 *
 * Only the owner frees its retired pages (they sit in its queues), so a thread that goes
 * idle keeps them, at most one 64 KiB page per small bin with the segments that hold them,
 * until its next slow-path calls, collect or detach; a forced collect in another thread
 * cannot take them. That is why medium pages (512 KiB), which mimalloc retires too, are
 * freed at once here.
 */
export const RETIRE_CYCLES = 256;

/**
 * Formats a page slot just taken from a segment for `bin`, owned by thread `owner`. The
 * page starts with nothing extended (capacity 0) and thread_free in `NO_DELAYED_FREE`.
 */
export function pageInit(t: MiContext, heap: number, page: number, pageShift: number, bin: number, owner: number): void {
  const u32 = t.u32;
  const segment = page - (page & SEGMENT_MASK);
  const index = (page - segment - SG_PAGES) >>> PAGE_DESCRIPTOR_SHIFT;
  const blockSize = BIN_BLOCK_SIZE[bin]!;
  const start = pageStartFor(segment, index, pageShift, blockSize);
  const end = segment + (index + 1) * 2 ** pageShift;
  const w = page >>> 2;
  u32[w + (PG_BLOCK_SIZE >>> 2)] = blockSize;
  u32[w + (PG_START >>> 2)] = start;
  u32[w + (PG_CAPACITY >>> 2)] = 0;
  u32[w + (PG_EXTENT >>> 2)] = 0;
  u32[w + (PG_RESERVED >>> 2)] = Math.floor((end - start) / blockSize);
  u32[w + (PG_FREE >>> 2)] = 0;
  u32[w + (PG_LOCAL_FREE >>> 2)] = 0;
  u32[w + (PG_USED >>> 2)] = 0;
  u32[w + (PG_NEXT >>> 2)] = 0;
  u32[w + (PG_PREV >>> 2)] = 0;
  u32[w + (PG_BIN >>> 2)] = bin;
  u32[w + (PG_RETIRE >>> 2)] = 0;
  const grid = blockGrid(blockSize);
  u32[w + (PG_GRID_INVERSE >>> 2)] = grid.inverse;
  u32[w + (PG_GRID_SHIFT >>> 2)] = grid.shift;
  u32[w + (PG_GRID_LIMIT >>> 2)] = grid.limit;
  if (t.secure) {
    const r1 = nextRandom(u32[(heap + HP_RANDOM) >>> 2]!);
    const r2 = nextRandom(r1);
    u32[(heap + HP_RANDOM) >>> 2] = r2;
    u32[w + (PG_KEY0 >>> 2)] = r1;
    u32[w + (PG_KEY1 >>> 2)] = r2;
  } else {
    u32[w + (PG_KEY0 >>> 2)] = 0;
    u32[w + (PG_KEY1 >>> 2)] = 0;
  }
  Atomics.store(u32, w + (PG_THREAD_FREE >>> 2), NO_DELAYED_FREE);
  Atomics.store(u32, w + (PG_OWNER >>> 2), owner);
  u32[w + (PG_FLAGS >>> 2)] = PAGE_IN_USE;
}

/**
 * Extends the free list over the next blocks of the page (at most `EXTEND_BYTES` worth, at
 * least one block), writing each block's link and freed marker. Called only when `free` is
 * empty, so the new blocks become the whole free list. In secure mode they are linked in a
 * shuffled order. Returns the number of blocks added (0 when the page is fully extended).
 */
export function pageExtend(t: MiContext, heap: number, page: number): number {
  const u32 = t.u32;
  const i32 = t.i32;
  const w = page >>> 2;
  const capacity = u32[w + (PG_CAPACITY >>> 2)]!;
  const reserved = u32[w + (PG_RESERVED >>> 2)]!;
  if (capacity >= reserved) return 0;
  const blockSize = u32[w + (PG_BLOCK_SIZE >>> 2)]!;
  let count = blockSize >= EXTEND_BYTES ? 1 : Math.floor(EXTEND_BYTES / blockSize);
  if (count > reserved - capacity) count = reserved - capacity;
  const first = u32[w + (PG_START >>> 2)]! + capacity * blockSize;
  const cookie = t.cookie;
  if (!t.secure) {
    let block = first;
    for (let i = 1; i < count; i++) {
      const next = block + blockSize;
      u32[block >>> 2] = next;
      i32[(block + BLOCK_MARKER) >>> 2] = freedMarker(block, cookie);
      block = next;
    }
    u32[block >>> 2] = 0;
    i32[(block + BLOCK_MARKER) >>> 2] = freedMarker(block, cookie);
    u32[w + (PG_FREE >>> 2)] = first;
  } else {
    // Visit the new blocks in the order start, start + step, ... (mod count): a permutation
    // because step is coprime with count.
    const key0 = u32[w + (PG_KEY0 >>> 2)]!;
    const key1 = u32[w + (PG_KEY1 >>> 2)]!;
    const r1 = nextRandom(u32[(heap + HP_RANDOM) >>> 2]!);
    const r2 = nextRandom(r1);
    u32[(heap + HP_RANDOM) >>> 2] = r2;
    const step = coprimeStep(count, r2);
    let slot = r1 % count;
    const head = first + slot * blockSize;
    let block = head;
    for (let i = 1; i < count; i++) {
      slot += step;
      if (slot >= count) slot -= count;
      const next = first + slot * blockSize;
      u32[block >>> 2] = encodeLink(next, key0, key1);
      i32[(block + BLOCK_MARKER) >>> 2] = freedMarker(block, cookie);
      block = next;
    }
    u32[block >>> 2] = encodeLink(0, key0, key1);
    i32[(block + BLOCK_MARKER) >>> 2] = freedMarker(block, cookie);
    u32[w + (PG_FREE >>> 2)] = head;
  }
  reachStep(t, 'extend:linked');
  u32[w + (PG_CAPACITY >>> 2)] = capacity + count;
  u32[w + (PG_EXTENT >>> 2)] = (capacity + count) * blockSize;
  addEvent(t, heap, HeapEvent.pagesExtended);
  return count;
}

/**
 * Takes the page's whole thread_free list (one compare-and-swap that keeps the delayed
 * state) and prepends it to `local_free`. Returns the number of blocks taken. `PG_COLLECTS`
 * is odd from before the take until the blocks are spliced (invariant 11 of `layout.ts`).
 * @throws AllocError `HeapCorrupted` when a link leaves the page's extended blocks or the
 *   list is longer than the page's capacity (a cycle); the list is then not spliced
 */
export function collectThreadFree(t: MiContext, heap: number, page: number): number {
  const u32 = t.u32;
  const w = page >>> 2;
  const tfw = w + (PG_THREAD_FREE >>> 2);
  if (Atomics.load(u32, tfw) <= DELAYED_MASK) return 0;
  const collects = w + (PG_COLLECTS >>> 2);
  Atomics.add(u32, collects, 1);
  try {
    let head = 0;
    for (;;) {
      const word = Atomics.load(u32, tfw);
      head = word - (word & DELAYED_MASK);
      if (head === 0) return 0;
      if (Atomics.compareExchange(u32, tfw, word, word & DELAYED_MASK) === word) break;
    }
    reachStep(t, 'collect:taken');
    const capacity = u32[w + (PG_CAPACITY >>> 2)]!;
    const start = u32[w + (PG_START >>> 2)]!;
    const span = capacity * u32[w + (PG_BLOCK_SIZE >>> 2)]!;
    const inverse = u32[w + (PG_GRID_INVERSE >>> 2)]!;
    const shift = u32[w + (PG_GRID_SHIFT >>> 2)]!;
    const limit = u32[w + (PG_GRID_LIMIT >>> 2)]!;
    let count = 0;
    let tail = 0;
    for (let at = head; at !== 0; at = readLink(t, page, at)) {
      const offset = (at - start) >>> 0;
      if (offset >= span || !onBlockGrid(offset, inverse, shift, limit)) {
        throw heapCorrupted(
          BACKEND_NAME,
          `the thread_free list of the page at ${hex(page)} links ${tail === 0 ? 'from its head' : `from ${hex(tail)}`} ` +
            `to ${hex(at)}, which is no block of the page (a write after free?)`,
        );
      }
      if (++count > capacity) {
        throw heapCorrupted(BACKEND_NAME, `the thread_free list of the page at ${hex(page)} is longer than its ${capacity} blocks`);
      }
      tail = at;
    }
    writeLink(t, page, tail, u32[w + (PG_LOCAL_FREE >>> 2)]!);
    u32[w + (PG_LOCAL_FREE >>> 2)] = head;
    reachStep(t, 'collect:spliced');
    u32[w + (PG_USED >>> 2)] = u32[w + (PG_USED >>> 2)]! - count;
    addEvent(t, heap, HeapEvent.threadFreeCollected, count);
    return count;
  } finally {
    Atomics.add(u32, collects, 1);
  }
}

/**
 * mimalloc's `_mi_page_free_collect(page, false)`: collects thread_free into local_free and,
 * when `free` is empty, makes local_free the free list.
 */
export function pageCollect(t: MiContext, heap: number, page: number): void {
  const u32 = t.u32;
  const w = page >>> 2;
  // A plain read is a hint: an empty list seen here is collected next time.
  if (u32[w + (PG_THREAD_FREE >>> 2)]! > DELAYED_MASK) collectThreadFree(t, heap, page);
  if (u32[w + (PG_FREE >>> 2)] === 0) {
    u32[w + (PG_FREE >>> 2)] = u32[w + (PG_LOCAL_FREE >>> 2)]!;
    u32[w + (PG_LOCAL_FREE >>> 2)] = 0;
  }
  if (t.checked) checkPageCounts(t, page);
}

/**
 * Moves a page that has no free block and nothing left to extend to the full queue, after
 * asking remote frees to come through the delayed list (`USE_DELAYED_FREE`), so the owner
 * hears of the page again. A free that raced in before the state changed is collected
 * right after: then the page is not full and stays where it is (returns false).
 *
 * Invariant kept: a page in the full queue has state `USE_DELAYED_FREE`, or a remote free of
 * one of its blocks is on its way to the owner's delayed list (the state was
 * `DELAYED_FREEING` and that free will deliver a block, which takes the page out again).
 */
export function pageToFull(t: MiContext, heap: number, page: number): boolean {
  trySetDelayed(t, page, USE_DELAYED_FREE, false, DELAYED_TRIES);
  pageCollect(t, heap, page);
  const u32 = t.u32;
  const w = page >>> 2;
  if (u32[w + (PG_FREE >>> 2)] !== 0) {
    trySetDelayed(t, page, NO_DELAYED_FREE, false, DELAYED_TRIES);
    return false;
  }
  if (t.checked) checkPageCounts(t, page);
  queueRemove(t, heap, u32[w + (PG_BIN >>> 2)]!, page);
  u32[w + (PG_FLAGS >>> 2)] = u32[w + (PG_FLAGS >>> 2)]! | PAGE_IN_FULL;
  queuePushBack(t, heap, BIN_FULL, page);
  addEvent(t, heap, HeapEvent.pagesFull);
  return true;
}

/** Takes a page out of the full queue back to its bin's queue (a block of it was freed). */
export function pageUnfull(t: MiContext, heap: number, page: number): void {
  if (t.checked) checkPageCounts(t, page);
  const u32 = t.u32;
  const w = page >>> 2;
  const flags = u32[w + (PG_FLAGS >>> 2)]!;
  if ((flags & PAGE_IN_FULL) === 0) return;
  queueRemove(t, heap, BIN_FULL, page);
  u32[w + (PG_FLAGS >>> 2)] = flags & ~PAGE_IN_FULL;
  queuePushBack(t, heap, u32[w + (PG_BIN >>> 2)]!, page);
  // Remote frees may go straight to thread_free again; a producer mid-way finishes itself.
  trySetDelayed(t, page, NO_DELAYED_FREE, false, DELAYED_TRIES);
}

/**
 * Called when a page's last block was freed (`used` reached 0) and the heap has no delayed
 * page reuse (with it the page is held instead: `pageEmptied` in `free.ts`). The only page
 * of a small bin is kept for `RETIRE_CYCLES` slow-path calls (so a malloc/free loop does not
 * take and give back a page each time); any other is freed now.
 */
export function pageRetire(t: MiContext, heap: number, page: number): void {
  if (t.checked) checkPageCounts(t, page);
  const u32 = t.u32;
  const w = page >>> 2;
  const bin = u32[w + (PG_BIN >>> 2)]!;
  const q = queueOf(heap, bin);
  if (
    (u32[w + (PG_FLAGS >>> 2)]! & PAGE_IN_FULL) === 0 &&
    u32[w + (PG_BLOCK_SIZE >>> 2)]! <= SMALL_OBJ_SIZE_MAX &&
    u32[(q + QUEUE_FIRST) >>> 2] === page &&
    u32[(q + QUEUE_LAST) >>> 2] === page
  ) {
    // Heartbeats wrap at 2^32; 0 means "not retired", so an expiry of 0 becomes 1.
    const due = (u32[(heap + HP_HEARTBEAT) >>> 2]! + RETIRE_CYCLES) >>> 0 || 1;
    if (!hasRetired(u32, heap) || heartbeatBefore(due, u32[(heap + HP_RETIRE_DUE) >>> 2]!)) u32[(heap + HP_RETIRE_DUE) >>> 2] = due;
    u32[w + (PG_RETIRE >>> 2)] = due;
    reachStep(t, 'page:retired');
    u32[((heap + HP_RETIRED_BINS) >>> 2) + (bin >>> 5)] |= 1 << (bin & 31);
    addEvent(t, heap, HeapEvent.pagesRetired);
    return;
  }
  pageFree(t, heap, page);
}

/** Takes an empty page out of its queue and gives its slot back to the segment. */
export function pageFree(t: MiContext, heap: number, page: number): void {
  queueRemove(t, heap, queueBinOf(t, page), page);
  addEvent(t, heap, HeapEvent.pagesFreed);
  pageSlotFree(t, heap, page);
}

/**
 * Frees the retired pages that are still empty once the heartbeat reaches their expiry (or
 * all at once when `force`), as mimalloc's `_mi_heap_collect_retired`. A page allocated
 * from meanwhile stops being retired. The slow path calls this only when `retiredDue`.
 */
export function collectRetired(t: MiContext, heap: number, force: boolean): void {
  const u32 = t.u32;
  const heartbeat = u32[(heap + HP_HEARTBEAT) >>> 2]!;
  const bins = (heap + HP_RETIRED_BINS) >>> 2;
  let nextDue = 0;
  for (let word = 0; word < RETIRED_BIN_WORDS; word++) {
    let bits = u32[bins + word]!;
    let keep = 0;
    while (bits !== 0) {
      const lowest = bits & -bits;
      bits ^= lowest;
      // A page is retired as its bin's only page and, having free blocks, stays first: only
      // the first page needs looking at. A bin whose first page is gone or no longer
      // retired (a block was taken from it) loses its bit by not being kept in `keep`.
      const page = u32[(queueOf(heap, (word << 5) + 31 - Math.clz32(lowest)) + QUEUE_FIRST) >>> 2]!;
      if (page === 0) continue;
      const w = page >>> 2;
      const due = u32[w + (PG_RETIRE >>> 2)]!;
      if (due === 0) continue;
      if (u32[w + (PG_USED >>> 2)] !== 0) {
        u32[w + (PG_RETIRE >>> 2)] = 0;
      } else if (force || !heartbeatBefore(heartbeat, due)) {
        pageFree(t, heap, page);
      } else {
        keep |= lowest;
        if (nextDue === 0 || heartbeatBefore(due, nextDue)) nextDue = due;
      }
    }
    u32[bins + word] = keep;
  }
  u32[(heap + HP_RETIRE_DUE) >>> 2] = nextDue;
}

/** Whether heartbeat `a` comes before `b` (both may have wrapped at 2^32). */
function heartbeatBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** Whether the slow path should collect retired pages: some are, and the first is due. */
export function retiredDue(u32: Uint32Array, heap: number): boolean {
  return hasRetired(u32, heap) && !heartbeatBefore(u32[(heap + HP_HEARTBEAT) >>> 2]!, u32[(heap + HP_RETIRE_DUE) >>> 2]!);
}

/** Whether any bin of the heap at `heap` may hold a retired page. */
export function hasRetired(u32: Uint32Array, heap: number): boolean {
  const bins = (heap + HP_RETIRED_BINS) >>> 2;
  for (let word = 0; word < RETIRED_BIN_WORDS; word++) if (u32[bins + word] !== 0) return true;
  return false;
}
