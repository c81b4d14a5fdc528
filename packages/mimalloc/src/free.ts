/**
 * Freeing a block (mimalloc's free.c): validation of the address, the local free (plain
 * writes on the owner's `local_free`), the remote free (a compare-and-swap push on the page's
 * `thread_free`, or the two-step delayed free for a full page), and huge blocks.
 */

import { AllocError } from '@heaplab/core/backend';

import { checkLocalFree, checkPageCounts } from './checked.js';
import { type MiContext, reachStep } from './context.js';
import { delayedListHas } from './delayed-list.js';
import { pageHold } from './held-pages.js';
import { countFree, HUGE_BIN_STAT, hugeBlockSegment, notLiveBlock, pageListHas, writeLink } from './internal.js';
import {
  BLOCK_MARKER_WORD,
  BLOCK_MARKER,
  DELAYED_FREEING,
  DELAYED_MASK,
  MAP_KIND_MASK,
  MAP_SHIFT_BITS,
  PAGE_DESCRIPTOR_SHIFT,
  PAGE_IN_FULL,
  PG_BIN,
  PG_BLOCK_SIZE,
  PG_CAPACITY,
  PG_FLAGS,
  PG_FREE,
  PG_GRID_INVERSE,
  PG_GRID_SHIFT,
  PG_KEY0,
  PG_KEY1,
  PG_LOCAL_FREE,
  PG_OWNER,
  PG_START,
  PG_THREAD_FREE,
  PG_USED,
  SEGMENT_MASK,
  SEGMENT_PAGED_MAX,
  SEGMENT_SHIFT,
  SG_HUGE_SIZE,
  SG_PAGES,
} from './layout.js';
import { pageRetire, pageUnfull } from './page.js';
import { freeRemote } from './remote.js';
import { remoteBufferHolds } from './remote-buffer.js';
import { encodeLink, freedMarker } from './secure.js';
import { hugeFree } from './segment.js';

/**
 * Whether `address` is not one of the blocks 0..capacity-1 of the page whose descriptor is
 * at word `w`: off its block grid, before its first block or beyond the extended blocks (a
 * free page slot, capacity 0, has none). One multiply, one rotate and one compare, no
 * division: for the offset `x` from the first block, `rotr(x * inverse, shift)` (the grid
 * test of `blockGrid` in `size-classes.ts`) is `x / blockSize` when `x` is a multiple of the
 * block size and above `floor((2^32 - 1) / blockSize)` when it is not. A page's capacity is
 * at most that bound (its blocks fit in 2^32 bytes), so the product is below the capacity
 * exactly for blocks 0..capacity-1. An address before the first block makes `x` negative,
 * a number near 2^32 unsigned, and fails the same compare. `freeBlock` has it written out.
 */
function offGrid(i32: Int32Array, w: number, address: number): boolean {
  const product = Math.imul(address - i32[w + (PG_START >>> 2)]!, i32[w + (PG_GRID_INVERSE >>> 2)]!);
  const shift = i32[w + (PG_GRID_SHIFT >>> 2)]!;
  return ((product >>> shift) | (product << (32 - shift))) >>> 0 >= i32[w + (PG_CAPACITY >>> 2)]!;
}

/**
 * The descriptor of the page whose live block starts at `address`, 0 for a huge block, or
 * an error: the segment must be in use, the address on the page's block grid below its
 * capacity, and the block must not carry its freed marker.
 * @throws AllocError `NotAllocated` otherwise
 */
export function validateBlock(t: MiContext, address: number): number {
  const u32 = t.u32;
  const map = u32[t.segmentMap + (address >>> SEGMENT_SHIFT)]!;
  const kind = map & MAP_KIND_MASK;
  if (kind === 0 || kind > SEGMENT_PAGED_MAX) {
    if (hugeBlockSegment(t, address) === 0) throw notLiveBlock(address, 'no block of this heap starts there');
    return 0;
  }
  const offset = address & SEGMENT_MASK;
  const page = address - offset + SG_PAGES + ((offset >>> (map >>> MAP_SHIFT_BITS)) << PAGE_DESCRIPTOR_SHIFT);
  const w = page >>> 2;
  if (offGrid(t.i32, w, address)) {
    throw notLiveBlock(address, 'it is not on the block grid of an in-use page (interior or never allocated)');
  }
  if (t.i32[(address + BLOCK_MARKER) >>> 2] === freedMarker(address, t.cookie) && onFreeList(t, page, address)) {
    throw notLiveBlock(address, 'the block is already free (double free)');
  }
  return page;
}

/**
 * Whether `block`, found carrying its freed marker, is on a free list. The marker is only a
 * hint: it sits in the block's second word, which a live block's data may happen to match
 * (one chance in 2^30 for random data), so a free that finds it asks here before refusing.
 * Only the page's owner may walk its lists (free, local_free, thread_free, and its heap's
 * delayed list, which only the owner drains; and the threads' remote-free buffers, where
 * another thread's free of the block may wait); for another thread's page or an abandoned
 * one, and while a producer is between the two steps of a delayed free, the marker stands
 * as the answer.
 * @throws AllocError `HeapCorrupted` for a cycle in the delayed list, or a bad link there in
 *   secure mode
 */
export function onFreeList(t: MiContext, page: number, block: number): boolean {
  const u32 = t.u32;
  const w = page >>> 2;
  if (Atomics.load(u32, w + (PG_OWNER >>> 2)) !== t.threadId) return true;
  const threadFree = Atomics.load(u32, w + (PG_THREAD_FREE >>> 2));
  if ((threadFree & DELAYED_MASK) === DELAYED_FREEING) return true;
  return (
    pageListHas(t, page, u32[w + (PG_FREE >>> 2)]!, block) ||
    pageListHas(t, page, u32[w + (PG_LOCAL_FREE >>> 2)]!, block) ||
    pageListHas(t, page, threadFree - (threadFree & DELAYED_MASK), block) ||
    delayedListHas(t, block) ||
    remoteBufferHolds(t, page, block)
  );
}

/**
 * Frees the block at `address` from any thread. The common case, this thread's free of a
 * live block of its own page, is kept small enough for the JIT to inline into callers: the
 * map word, the page descriptor, then one combined test (on the block grid below the
 * capacity, no freed marker, this thread's page and no slow paths) and a push on
 * `local_free` and the `used` count. Anything else, refusals included, goes to `freeChecked`.
 *
 * It computes in int32 (`| 0`, `Math.imul`, `>>> 2` for word indices), asm.js style: the
 * JIT then keeps every value in a register as a 32-bit integer. Addresses from 2 GiB up
 * are negative here; they are the same bits, and every word index is taken with `>>>`.
 * Any uint32 `address` is safe: one outside every in-use segment reaches `hugeFree`, which
 * refuses it, and one misaligned inside a page is off the grid.
 * @throws AllocError `NotAllocated` when it is not the start of a live block
 */
export function freeBlock(t: MiContext, address: number): void {
  const i32 = t.i32;
  const block = address | 0;
  const map = i32[t.segmentMap + (block >>> SEGMENT_SHIFT)]!;
  // Kinds 1..SEGMENT_PAGED_MAX have pages; 0 (not in use) wraps to a large unsigned value.
  if (((map & MAP_KIND_MASK) - 1) >>> 0 >= SEGMENT_PAGED_MAX) {
    freeUnpaged(t, address);
    return;
  }
  const offset = block & SEGMENT_MASK;
  const page = (block - offset + SG_PAGES + ((offset >>> (map >>> MAP_SHIFT_BITS)) << PAGE_DESCRIPTOR_SHIFT)) >>> 0;
  const w = page >>> 2;
  const markerWord = (block >>> 2) + BLOCK_MARKER_WORD;
  const marker = freedMarker(block, t.cookie);
  // `offGrid`, written out (as a call it would push this function past what V8 inlines into
  // its callers): one compare refuses interior addresses, addresses before the first block
  // and blocks beyond the extended ones. `localOwner` is -1, which no page has, while the
  // slow paths are on.
  const product = Math.imul(block - i32[w + (PG_START >>> 2)]!, i32[w + (PG_GRID_INVERSE >>> 2)]!);
  const shift = i32[w + (PG_GRID_SHIFT >>> 2)]!;
  if (
    ((product >>> shift) | (product << (32 - shift))) >>> 0 >= i32[w + (PG_CAPACITY >>> 2)]! ||
    i32[markerWord] === marker ||
    i32[w + (PG_OWNER >>> 2)] !== t.localOwner
  ) {
    freeChecked(t, page, address);
    return;
  }
  // The marker goes in first, so a second free of the block is refused from now on.
  i32[markerWord] = marker;
  // Local free: only this thread touches local_free and used, so plain writes do.
  i32[block >>> 2] = i32[w + (PG_LOCAL_FREE >>> 2)]!;
  i32[w + (PG_LOCAL_FREE >>> 2)] = block;
  const used = (i32[w + (PG_USED >>> 2)]! - 1) | 0;
  i32[w + (PG_USED >>> 2)] = used;
  if (used === 0 || (i32[w + (PG_FLAGS >>> 2)]! & PAGE_IN_FULL) !== 0) freeLocalSlow(t, page, used);
}

/** A huge block's free, or the refusal of an address in no in-use paged segment. */
function freeUnpaged(t: MiContext, address: number): void {
  hugeFree(t, address);
  if (t.countBins) countFree(t, HUGE_BIN_STAT);
}

/**
 * Everything but the local fast path, for an address of the page at `page`: refuses an
 * address off the grid and a block found on a free list, then frees a block whose data only
 * happened to match its marker, a block of another thread's page (a remote free) and any
 * block on the slow paths.
 * @throws AllocError `NotAllocated` when it is not the start of a live block
 */
function freeChecked(t: MiContext, page: number, address: number): void {
  const i32 = t.i32;
  const w = page >>> 2;
  if (offGrid(i32, w, address)) {
    throw invalidFree(t, address);
  }
  if (i32[(address + BLOCK_MARKER) >>> 2] === freedMarker(address, t.cookie) && onFreeList(t, page, address)) {
    throw notLiveBlock(address, 'the block is already free (double free)');
  }
  freeNotLocal(t, page, address);
}

/**
 * A checked block of a page that is another thread's (a remote free), or of this thread's
 * page on the slow paths (secure mode's encoded link, checked mode, the `stats` option's
 * counters, a test hook), or a live block whose data matched its freed marker.
 */
function freeNotLocal(t: MiContext, page: number, block: number): void {
  const u32 = t.u32;
  const w = page >>> 2;
  // Counted for this thread, whoever owns the page (the `stats` option takes this path).
  if (t.countBins) countFree(t, u32[w + (PG_BIN >>> 2)]!);
  if (u32[w + (PG_OWNER >>> 2)] !== t.threadId) {
    freeRemote(t, page, block);
    return;
  }
  if (t.checked) checkLocalFree(t, page);
  t.i32[(block + BLOCK_MARKER) >>> 2] = freedMarker(block, t.cookie);
  reachStep(t, 'local-free:marked');
  writeLink(t, page, block, u32[w + (PG_LOCAL_FREE >>> 2)]!);
  u32[w + (PG_LOCAL_FREE >>> 2)] = block;
  reachStep(t, 'local-free:linked');
  const used = u32[w + (PG_USED >>> 2)]! - 1;
  u32[w + (PG_USED >>> 2)] = used;
  if (used === 0 || (u32[w + (PG_FLAGS >>> 2)]! & PAGE_IN_FULL) !== 0) freeLocalSlow(t, page, used);
}

/** The rare ends of a local free: the page leaves the full queue, or it became empty. */
function freeLocalSlow(t: MiContext, page: number, used: number): void {
  if ((t.u32[(page + PG_FLAGS) >>> 2]! & PAGE_IN_FULL) !== 0) pageUnfull(t, t.heap, page);
  if (used === 0) pageEmptied(t, t.heap, page);
}

/**
 * A page of the heap at `heap` whose last block was just freed: with delayed page reuse it
 * is held until its QSBR goal is reached (which also keeps it for a malloc/free loop),
 * else retired or freed (`pageRetire`). Decided here, above both, so that page.ts never
 * calls up into held pages.
 */
function pageEmptied(t: MiContext, heap: number, page: number): void {
  if (t.qsbr === null) {
    pageRetire(t, heap, page);
    return;
  }
  if (t.checked) checkPageCounts(t, page);
  pageHold(t, heap, page);
}

/** The error for a refused free, saying why (validation again, off the fast path). */
function invalidFree(t: MiContext, address: number): AllocError {
  try {
    validateBlock(t, address);
  } catch (error) {
    if (error instanceof AllocError) return error;
    throw error;
  }
  return notLiveBlock(address, 'it is not a live block');
}

/**
 * Frees a block into a page owned by the heap at `heap`, on that heap's behalf (a block from
 * the delayed list; its freed marker is already written). Plain writes: the caller acts as
 * the owner.
 */
export function freeLocalTo(t: MiContext, heap: number, page: number, block: number): void {
  const u32 = t.u32;
  const w = page >>> 2;
  const localFree = u32[w + (PG_LOCAL_FREE >>> 2)]!;
  u32[block >>> 2] = t.secure ? encodeLink(localFree, u32[w + (PG_KEY0 >>> 2)]!, u32[w + (PG_KEY1 >>> 2)]!) : localFree;
  u32[w + (PG_LOCAL_FREE >>> 2)] = block;
  const used = u32[w + (PG_USED >>> 2)]! - 1;
  u32[w + (PG_USED >>> 2)] = used;
  if ((u32[w + (PG_FLAGS >>> 2)]! & PAGE_IN_FULL) !== 0) pageUnfull(t, heap, page);
  if (used === 0) pageEmptied(t, heap, page);
}

/**
 * Bytes usable in the live block at `address`: its block size (a huge block's usable size).
 * @throws AllocError `NotAllocated` when it is not the start of a live block
 */
export function blockUsableSize(t: MiContext, address: number): number {
  const page = validateBlock(t, address);
  if (page !== 0) return t.u32[(page + PG_BLOCK_SIZE) >>> 2]!;
  return t.u32[(hugeBlockSegment(t, address) + SG_HUGE_SIZE) >>> 2]!;
}
