/**
 * What crosses files (mimalloc's `internal.h`): the small helpers every layer uses to find
 * its way around the shared structures of `layout.ts` (a block's page, a page's descriptor
 * and start, a segment's kind and pages from the segment map, a free block's link, bounded
 * walks of a page's lists), and the map of the layers. Nothing here changes a list or takes
 * a lock; it imports only the leaves.
 *
 * The files form layers, and a file imports only from layers below it (checked by
 * `dpdm`, see the root `package.json`), so a call never returns to a file it left:
 *
 * ```text
 *  mimalloc.ts (the Backend), index.ts (descriptor, extensions)    the backend
 *  stats.ts  check.ts  block-layout.ts  recover.ts  walk.ts         figures and repair
 *  heap.ts (reset, collect, abandon)  alloc.ts  dead-heap.ts        the heap
 *  delayed.ts (draining the delayed list)                           |
 *  free.ts (local free, remote free's entry, huge free)             | freeing
 *  remote.ts (a remote free, step by step, and its resolver)        |
 *  abandoned.ts (abandon and reclaim of segments)                   |
 *  held-pages.ts (delayed page reuse)                               | pages and segments
 *  page.ts (init, extend, collect, full, retire)                    |
 *  segment.ts (the segment pool, page slots, caches, huge blocks)   |
 *  page-queue.ts (a heap's queues and direct table)                 |
 *  peak.ts (usedBytes walk, peak sampling)  checked.ts              leaves: read-only walks
 *  delayed-list.ts (push, walk)  thread-free.ts (the state word)    and the two shared words
 *  internal.ts (this file)                                          |
 *  context.ts  secure.ts  size-classes.ts  options.ts               |
 *  layout.ts (every structure drawn, every invariant, no imports)   |
 * ```
 *
 * Where mimalloc's C calls back up (a page that empties is held or retired; a segment that
 * is reclaimed collects and queues its pages), the caller sits in the upper layer: the
 * free path decides between holding and retiring (`free.ts`), and reclaim lives above pages
 * and held pages (`abandoned.ts`). The only calls from a lower layer to code it cannot
 * import are the thread's own hooks on the context: the deferred-free callback and the test
 * step hook (`context.ts`).
 */

import { type AllocError, notAllocated } from '@heaplab/core/backend';

import type { MiContext } from './context.js';
import {
  BACKEND_NAME,
  BIN_STAT_BYTES,
  BS_ALLOCATED,
  BS_FREED,
  BS_PEAK,
  HP_EVENTS,
  LARGE_PAGE_SHIFT,
  MAP_KIND_MASK,
  MAP_SHIFT_BITS,
  MEDIUM_PAGE_SHIFT,
  PAGE_DESCRIPTOR_BYTES,
  PAGE_DESCRIPTOR_SHIFT,
  PAGE_IN_USE,
  PG_BIN,
  PG_BLOCK_SIZE,
  PG_CAPACITY,
  PG_EXTENT,
  PG_FLAGS,
  PG_FREE,
  PG_KEY0,
  PG_KEY1,
  PG_LOCAL_FREE,
  PG_NEXT,
  PG_OWNER,
  PG_PREV,
  PG_RETIRE,
  PG_START,
  PG_THREAD_FREE,
  PG_USED,
  SEGMENT_BYTES,
  SEGMENT_HEADER_BYTES,
  SEGMENT_HUGE,
  SEGMENT_HUGE_TAIL,
  SEGMENT_LARGE,
  SEGMENT_MASK,
  SEGMENT_MEDIUM,
  SEGMENT_SHIFT,
  SEGMENT_SMALL,
  segmentMagic,
  SG_HUGE_BLOCK,
  SG_MAGIC,
  SG_PAGES,
  SMALL_PAGE_SHIFT,
} from './layout.js';
import { decodeLink, encodeLink } from './secure.js';
import { naturalAlignment } from './size-classes.js';

/** Adds `count` (default 1) to event `event` of the heap record at `heap`. */
export function addEvent(t: MiContext, heap: number, event: number, count = 1): void {
  const index = ((heap + HP_EVENTS) >>> 2) + event;
  t.u32[index] = t.u32[index]! + count;
}

/** The entry of `HP_BIN_STATS` that counts huge blocks (bins start at 1). */
export const HUGE_BIN_STAT = 0;

/**
 * Counts an allocation of a block of `bin` (0: a huge block) in this thread's counters
 * (`HP_BIN_STATS`) and raises its peak of live blocks. Plain words: only this thread writes
 * them. The fast paths inline the same three steps.
 */
export function countAlloc(t: MiContext, bin: number): void {
  const i32 = t.i32;
  const c = t.binStats + bin * (BIN_STAT_BYTES >>> 2);
  const allocated = (i32[c + (BS_ALLOCATED >>> 2)]! + 1) | 0;
  i32[c + (BS_ALLOCATED >>> 2)] = allocated;
  const live = (allocated - i32[c + (BS_FREED >>> 2)]!) | 0;
  if (live > i32[c + (BS_PEAK >>> 2)]!) i32[c + (BS_PEAK >>> 2)] = live;
}

/** Counts a free of a block of `bin` (0: a huge block) made by this thread. */
export function countFree(t: MiContext, bin: number): void {
  const c = t.binStats + bin * (BIN_STAT_BYTES >>> 2) + (BS_FREED >>> 2);
  t.i32[c] = (t.i32[c]! + 1) | 0;
}

/** The error for an address that is not the start of a live block, saying why. */
export function notLiveBlock(address: number, why: string): AllocError {
  return notAllocated(BACKEND_NAME, address, `not the start of a live block: ${why}`);
}

/** Index of the page holding `address` in its segment, given the segment's page shift. */
export function pageIndexOf(address: number, pageShift: number): number {
  return (address & SEGMENT_MASK) >>> pageShift;
}

/** Address of the descriptor of page `index` of the segment at `segment`. */
export function pageDescriptor(segment: number, index: number): number {
  return segment + SG_PAGES + (index << PAGE_DESCRIPTOR_SHIFT);
}

/**
 * Address of block 0 of page `index` of `segment` for blocks of `blockSize`. Pages after
 * the first start at a multiple of the page size; the first is shortened by the segment
 * header and starts at the next multiple of the block size's natural alignment, so that a
 * bin whose block size is a multiple of `A` gives `A`-aligned blocks in every page.
 */
export function pageStartFor(segment: number, index: number, pageShift: number, blockSize: number): number {
  if (index !== 0) return segment + index * 2 ** pageShift;
  const align = naturalAlignment(blockSize, 2 ** pageShift);
  const rest = SEGMENT_HEADER_BYTES % align;
  return segment + (rest === 0 ? SEGMENT_HEADER_BYTES : SEGMENT_HEADER_BYTES + align - rest);
}

/** The descriptor of the page holding `block` (a block of a paged segment). */
export function pageOfBlock(t: MiContext, block: number): number {
  const map = t.mapOf(block);
  return pageDescriptor(block - (block & SEGMENT_MASK), pageIndexOf(block, map >>> MAP_SHIFT_BITS));
}

/** Page shift of each segment kind. */
export function pageShiftOf(kind: number): number {
  return kind === SEGMENT_SMALL ? SMALL_PAGE_SHIFT : kind === SEGMENT_MEDIUM ? MEDIUM_PAGE_SHIFT : LARGE_PAGE_SHIFT;
}

/**
 * The kind of the segment at `segment`, from the segment map. The header's copy (`SG_KIND`)
 * and page geometry sit in its first 16 bytes, which an overflow of the block before the
 * segment reaches; the map, in the control region, is what every path trusts.
 */
export function segmentKind(t: MiContext, segment: number): number {
  return t.mapOf(segment) & MAP_KIND_MASK;
}

/**
 * Pages of the paged segment at `segment`, from the map's page shift (see `segmentKind`);
 * 0 for a map word without pages (not in use, huge), so a walk racing a release stops.
 */
export function pageCountOf(t: MiContext, segment: number): number {
  const shift = t.mapOf(segment) >>> MAP_SHIFT_BITS;
  return shift < SMALL_PAGE_SHIFT || shift > SEGMENT_SHIFT ? 0 : 1 << (SEGMENT_SHIFT - shift);
}

/** True when the segment at `segment` is of a kind whose pages have descriptors. */
export function isPagedKind(kind: number): boolean {
  return kind === SEGMENT_SMALL || kind === SEGMENT_MEDIUM || kind === SEGMENT_LARGE;
}

/**
 * The page count of the segment whose map word is at `index`, for a walk that runs without
 * the segment lock (figures, peak samples): 0 unless the map word names a kind with pages
 * and the header carries its magic, and never above `MAX_SEGMENT_PAGES`. The map word is
 * loaded atomically: `segmentAlloc` stores it last, so the header is then seen whole.
 */
export function walkablePageCount(t: MiContext, index: number): number {
  const u32 = t.u32;
  if (!isPagedKind(u32[t.segmentMap + index]! & MAP_KIND_MASK)) return 0;
  if (!isPagedKind(Atomics.load(u32, t.segmentMap + index) & MAP_KIND_MASK)) return 0;
  const segment = index * SEGMENT_BYTES;
  if (u32[(segment + SG_MAGIC) >>> 2] !== segmentMagic(segment, t.cookie)) return 0;
  return pageCountOf(t, segment);
}

/** Whether `page` is the descriptor of a page in use of a paged segment. */
export function isPageInUse(t: MiContext, page: number): boolean {
  const offset = (page & SEGMENT_MASK) - SG_PAGES;
  return (
    offset >= 0 &&
    (offset & (PAGE_DESCRIPTOR_BYTES - 1)) === 0 &&
    offset >>> PAGE_DESCRIPTOR_SHIFT < pageCountOf(t, page) &&
    (t.u32[(page + PG_FLAGS) >>> 2]! & PAGE_IN_USE) !== 0
  );
}

/** Usable bytes of one segment: what its header leaves. */
export const SEGMENT_USABLE_BYTES = SEGMENT_BYTES - SEGMENT_HEADER_BYTES;

/** Usable bytes of a huge block at `offset` in a span of `span` segments (0 for none). */
export function hugeUsable(span: number, offset: number): number {
  return span <= 0 ? 0 : Math.min(span * SEGMENT_BYTES - offset, span * SEGMENT_USABLE_BYTES);
}

/**
 * The first segment of the live huge block starting at `address`, or 0 when no huge block
 * starts there. Huge blocks start in their first segment or, for alignments of a segment or
 * more, exactly at the start of their second.
 */
export function hugeBlockSegment(t: MiContext, address: number): number {
  const u32 = t.u32;
  let segment = address - (address & SEGMENT_MASK);
  let map = u32[t.segmentMap + (segment >>> SEGMENT_SHIFT)]! & MAP_KIND_MASK;
  if (map === SEGMENT_HUGE_TAIL && segment === address && segment - SEGMENT_BYTES >= t.arenaStart) {
    segment -= SEGMENT_BYTES;
    map = u32[t.segmentMap + (segment >>> SEGMENT_SHIFT)]! & MAP_KIND_MASK;
  }
  if (map !== SEGMENT_HUGE) return 0;
  if (u32[(segment + SG_MAGIC) >>> 2] !== segmentMagic(segment, t.cookie)) return 0;
  return u32[(segment + SG_HUGE_BLOCK) >>> 2] === address ? segment : 0;
}

/** Clears a page descriptor so it reads as a free slot (capacity 0 refuses every free). */
export function clearPage(u32: Uint32Array, page: number): void {
  const w = page >>> 2;
  u32[w + (PG_FLAGS >>> 2)] = 0;
  u32[w + (PG_CAPACITY >>> 2)] = 0;
  u32[w + (PG_EXTENT >>> 2)] = 0;
  u32[w + (PG_USED >>> 2)] = 0;
  u32[w + (PG_FREE >>> 2)] = 0;
  u32[w + (PG_LOCAL_FREE >>> 2)] = 0;
  u32[w + (PG_NEXT >>> 2)] = 0;
  u32[w + (PG_PREV >>> 2)] = 0;
  u32[w + (PG_RETIRE >>> 2)] = 0;
  u32[w + (PG_BIN >>> 2)] = 0;
  Atomics.store(u32, w + (PG_THREAD_FREE >>> 2), 0);
  Atomics.store(u32, w + (PG_OWNER >>> 2), 0);
}

/** Reads the link of a free block of `page` (decoding it in secure mode). */
export function readLink(t: MiContext, page: number, block: number): number {
  const link = t.u32[block >>> 2]!;
  if (!t.secure) return link;
  const w = page >>> 2;
  return decodeLink(link, t.u32[w + (PG_KEY0 >>> 2)]!, t.u32[w + (PG_KEY1 >>> 2)]!);
}

/** Writes the link of a free block of `page` (encoding it in secure mode). */
export function writeLink(t: MiContext, page: number, block: number, next: number): void {
  if (!t.secure) {
    t.u32[block >>> 2] = next;
    return;
  }
  const w = page >>> 2;
  t.u32[block >>> 2] = encodeLink(next, t.u32[w + (PG_KEY0 >>> 2)]!, t.u32[w + (PG_KEY1 >>> 2)]!);
}

/**
 * Whether the list of `page` starting at `first` holds `block`. It stops at a link off the
 * page's block grid, and after as many steps as the page has blocks: a broken list is for
 * `check()` to report, not for a free to follow.
 */
export function pageListHas(t: MiContext, page: number, first: number, block: number): boolean {
  const u32 = t.u32;
  const w = page >>> 2;
  const start = u32[w + (PG_START >>> 2)]!;
  const blockSize = u32[w + (PG_BLOCK_SIZE >>> 2)]!;
  const capacity = u32[w + (PG_CAPACITY >>> 2)]!;
  for (let at = first, steps = 0; at !== 0 && steps < capacity; steps++) {
    if (at === block) return true;
    const offset = at - start;
    if (offset < 0 || offset >= capacity * blockSize || offset % blockSize !== 0) return false;
    at = readLink(t, page, at);
  }
  return false;
}

/**
 * Blocks on the list of `page` that starts at `head`, for walks without the owner's
 * cooperation (figures): it stops at a link that is no extended block of the page, and
 * after as many blocks as the page has, so a list taken and respliced meanwhile, or a
 * corrupted one, costs a bounded walk and a wrong figure, never a loop.
 */
export function pageListLength(t: MiContext, page: number, head: number): number {
  const u32 = t.u32;
  const w = page >>> 2;
  const start = u32[w + (PG_START >>> 2)]!;
  const blockSize = u32[w + (PG_BLOCK_SIZE >>> 2)]!;
  const capacity = u32[w + (PG_CAPACITY >>> 2)]!;
  let count = 0;
  for (let at = head; at !== 0 && count < capacity; count++) {
    const offset = at - start;
    if (offset < 0 || offset >= capacity * blockSize || offset % blockSize !== 0) break;
    at = readLink(t, page, at);
  }
  return count;
}
