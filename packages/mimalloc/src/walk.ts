/**
 * The heap walk (`Backend.walk`): every segment of the arena in address order, as the
 * regions `GlobalAllocator.walk()` draws (see `docs/walks/mimalloc.md`):
 *
 * ```text
 *  a paged segment (small: 64 pages of 64 KiB; medium: 8 of 512 KiB; large: 1)
 *  S                 S+64          S+SEGMENT_HEADER_BYTES               S+64 KiB
 *  | segment header  | descriptors | pad | blk | blk | blk | ... | never | tail |  page 0
 *  | metadata        | metadata    | hdr | live| free| live|     | (gap) | hdr  |  ...
 *                                                                ^ capacity .. reserved
 *  a huge block (SEGMENT_HUGE, then SEGMENT_HUGE_TAIL segments)
 *  | segment header metadata | pad (aligned) | the huge block, live ... | tail |
 *  a free segment of the pool: one `free` region of 4 MiB
 * ```
 *
 * Blocks never handed out (a page's blocks from its capacity up to its reserved count, which
 * the free list was not extended over yet) and free page slots are left to the facade's
 * `untouched`: no list holds them, `stats().freeBlocks` does not count them, and mimalloc
 * never wrote them (`pageExtend` writes a block's link only when it extends over it). A
 * block on any of a page's free lists, on a heap's delayed list or in a thread's remote-free
 * buffer is `free`: the user can
 * no longer use it, whichever list holds it; `detail` names the list.
 *
 * It reads as `check()` does: exact while no other thread is inside the allocator. A page
 * other threads are changing is read until two snapshots of its descriptor agree around its
 * list walks (`MAX_PAGE_READS`); a page that keeps changing is reported `HeapCorrupted` like
 * a damaged one, which only a heap busy on that very page can cause. Every list walk is
 * bounded by the page's capacity, and every link must be one of the page's extended blocks,
 * so a damaged list throws `HeapCorrupted`, never loops and never leaves the page.
 */

import { type HeapRegion, heapCorrupted, hex } from '@heaplab/core/backend';

import type { MiContext } from './context.js';
import { delayedNext } from './delayed-list.js';
import { heldGoal } from './held-pages.js';
import { pageDescriptor, pageOfBlock, pageShiftOf, pageStartFor } from './internal.js';
import {
  BACKEND_NAME,
  DELAYED_MASK,
  HP_DELAYED_FREE,
  MAP_KIND_MASK,
  MAP_SHIFT_BITS,
  PAGE_DESCRIPTOR_BYTES,
  PAGE_IN_FULL,
  PAGE_IN_USE,
  PG_BIN,
  PG_BLOCK_SIZE,
  PG_CAPACITY,
  PG_COLLECTS,
  PG_FLAGS,
  PG_FREE,
  PG_KEY0,
  PG_KEY1,
  PG_LOCAL_FREE,
  PG_OWNER,
  PG_RESERVED,
  PG_START,
  PG_THREAD_FREE,
  PG_USED,
  SEGMENT_BYTES,
  SEGMENT_HEADER_BYTES,
  SEGMENT_HUGE,
  SEGMENT_HUGE_TAIL,
  SEGMENT_LARGE,
  SEGMENT_MEDIUM,
  SEGMENT_SHIFT,
  SEGMENT_SMALL,
  segmentMagic,
  SG_HUGE_BLOCK,
  SG_HUGE_SIZE,
  SG_MAGIC,
  SG_OWNER,
  SG_PAGES,
  SG_SPAN,
} from './layout.js';
import { bufferedByPage } from './remote-buffer.js';
import { decodeLink } from './secure.js';
import { BIN_BLOCK_SIZE, BIN_MAX, segmentKindFor } from './size-classes.js';

/** Reads of one page's descriptor before a page that keeps changing is given up on. */
export const MAX_PAGE_READS = 16;

/** Which list a free block is on (`BlockState`), or that it is live. */
const LIVE = 0;
const ON_FREE = 1;
const ON_LOCAL_FREE = 2;
const ON_THREAD_FREE = 3;
const ON_DELAYED = 4;
const IN_BUFFER = 5;
const LIST_NAMES = ['', 'free list', 'local_free list', 'thread_free list', 'delayed list', 'remote-free buffer'];

/** The names of the segment kinds, as page kinds (index: the map's kind). */
export const PAGE_KIND_NAMES = ['', 'small', 'medium', 'large', 'huge'];

function corrupt(message: string): never {
  throw heapCorrupted(BACKEND_NAME, `walk: ${message}`);
}

/**
 * Calls `visit` for every region the heap's structures describe, in address order.
 * @throws AllocError `HeapCorrupted` for a damaged segment, page, free list or delayed list,
 *   or a page that kept changing under the walk
 */
export function walkHeap(t: MiContext, visit: (region: HeapRegion) => void): void {
  const u32 = t.u32;
  const delayed = delayedBlocksByPage(t);
  const buffered = bufferedByPage(t);
  let tailLeft = 0;
  for (let index = t.mapIndexStart; index < t.mapIndexEnd; index++) {
    const segment = index * SEGMENT_BYTES;
    const map = Atomics.load(u32, t.segmentMap + index);
    const kind = map & MAP_KIND_MASK;
    if (kind === SEGMENT_HUGE_TAIL) {
      if (tailLeft-- <= 0) corrupt(`segment ${hex(segment)} is marked as the tail of a huge block that does not span it`);
      continue;
    }
    if (tailLeft > 0) corrupt(`segment ${hex(segment)} should be the tail of a huge block (map word ${hex(map)})`);
    if (kind === 0) {
      if (inPool(t, segment)) visit({ address: segment, bytes: SEGMENT_BYTES, kind: 'free', detail: 'free segment of the pool' });
      continue;
    }
    if (segment < t.arenaStart || segment + SEGMENT_BYTES > t.arenaEnd) corrupt(`segment ${hex(segment)} is in use but outside the arena`);
    if (u32[(segment + SG_MAGIC) >>> 2] !== segmentMagic(segment, t.cookie)) corrupt(`segment ${hex(segment)} has a bad magic`);
    if (kind === SEGMENT_HUGE) {
      tailLeft = walkHuge(t, segment, visit) - 1;
      continue;
    }
    if (kind > SEGMENT_LARGE) corrupt(`segment ${hex(segment)}: unknown kind ${kind}`);
    const shift = pageShiftOf(kind);
    if (map >>> MAP_SHIFT_BITS !== shift) corrupt(`segment ${hex(segment)}: map page shift ${map >>> MAP_SHIFT_BITS} is not ${shift}`);
    walkPaged(t, segment, kind, shift, delayed, buffered, visit);
  }
  if (tailLeft > 0) corrupt('a huge block runs past the arena');
}

/** Whether the free segment at `segment` lies in one of the pool's ranges (whole). */
function inPool(t: MiContext, segment: number): boolean {
  const pools = t.pools;
  for (let i = 0, n = pools.publishedCount(); i < n; i++) {
    if (segment >= pools.start(i) && segment + SEGMENT_BYTES <= pools.end(i)) return true;
  }
  return false;
}

/** Regions of the huge block whose first segment is `segment`; returns its span. */
function walkHuge(t: MiContext, segment: number, visit: (region: HeapRegion) => void): number {
  const u32 = t.u32;
  const s = segment >>> 2;
  const span = u32[s + (SG_SPAN >>> 2)]!;
  const block = u32[s + (SG_HUGE_BLOCK >>> 2)]!;
  const usable = u32[s + (SG_HUGE_SIZE >>> 2)]!;
  const end = segment + span * SEGMENT_BYTES;
  const where = `huge segment ${hex(segment)}`;
  if (span < 1 || end > t.arenaEnd) corrupt(`${where}: span ${span} runs out of the arena`);
  if (block < segment + SEGMENT_HEADER_BYTES || block > segment + SEGMENT_BYTES) corrupt(`${where}: block ${hex(block)} is misplaced`);
  if (usable < 1 || block + usable > end) corrupt(`${where}: a block of ${usable} bytes does not fit its span`);
  const owner = Atomics.load(u32, s + (SG_OWNER >>> 2));
  visit({ address: segment, bytes: SEGMENT_HEADER_BYTES, kind: 'metadata', detail: `huge segment header (span ${span})` });
  if (block > segment + SEGMENT_HEADER_BYTES) {
    visit({
      address: segment + SEGMENT_HEADER_BYTES,
      bytes: block - segment - SEGMENT_HEADER_BYTES,
      kind: 'header',
      detail: 'alignment padding before a huge block',
    });
  }
  visit({ address: block, bytes: usable, kind: 'live', detail: 'huge block', ...ownerOf(owner) });
  if (block + usable < end) visit({ address: block + usable, bytes: end - block - usable, kind: 'header', detail: 'unusable tail of a huge span' });
  return span;
}

function ownerOf(owner: number): { thread?: number } {
  return owner === 0 ? {} : { thread: owner };
}

/** Regions of a paged segment: its header, its descriptors, then each page in use. */
function walkPaged(
  t: MiContext,
  segment: number,
  kind: number,
  shift: number,
  delayed: Map<number, number[]>,
  buffered: Map<number, number[]>,
  visit: (region: HeapRegion) => void,
): void {
  const u32 = t.u32;
  const pageCount = 2 ** (SEGMENT_SHIFT - shift);
  const owner = Atomics.load(u32, (segment + SG_OWNER) >>> 2);
  const kindName = PAGE_KIND_NAMES[kind]!;
  visit({ address: segment, bytes: SG_PAGES, kind: 'metadata', detail: `${kindName} segment header`, ...ownerOf(owner) });
  for (let i = 0; i < pageCount; i++) {
    const page = pageDescriptor(segment, i);
    const inUse = (u32[(page + PG_FLAGS) >>> 2]! & PAGE_IN_USE) !== 0;
    visit({ address: page, bytes: PAGE_DESCRIPTOR_BYTES, kind: 'metadata', detail: `page descriptor ${i} (${inUse ? 'in use' : 'free slot'})` });
  }
  const descriptorsEnd = pageDescriptor(segment, pageCount);
  if (descriptorsEnd < segment + SEGMENT_HEADER_BYTES) {
    visit({
      address: descriptorsEnd,
      bytes: segment + SEGMENT_HEADER_BYTES - descriptorsEnd,
      kind: 'metadata',
      detail: 'room for descriptors the segment kind does not use',
    });
  }
  for (let i = 0; i < pageCount; i++) {
    const page = pageDescriptor(segment, i);
    if ((u32[(page + PG_FLAGS) >>> 2]! & PAGE_IN_USE) === 0) continue;
    walkPage(t, { segment, index: i, shift, kind, page, delayed: delayed.get(page), buffered: buffered.get(page) }, visit);
  }
}

/**
 * A page in use, where the walk found it: its segment, its index there, the segment's page
 * shift and kind, its descriptor, and the blocks of it waiting on delayed lists and in
 * remote-free buffers (by `delayedBlocksByPage` and `bufferedByPage`).
 */
interface PageSite {
  segment: number;
  index: number;
  shift: number;
  kind: number;
  page: number;
  delayed: number[] | undefined;
  buffered: number[] | undefined;
}

/** What one read of a page found: the state of each extended block, and its facts. */
interface PageRead {
  states: Uint8Array;
  bin: number;
  blockSize: number;
  start: number;
  capacity: number;
  reserved: number;
  owner: number;
}

/** The descriptor words a page's lists and counts depend on, for the snapshot comparison. */
function pageSnapshot(u32: Uint32Array, page: number): number[] {
  const w = page >>> 2;
  return [
    u32[w + (PG_FLAGS >>> 2)]!,
    u32[w + (PG_CAPACITY >>> 2)]!,
    u32[w + (PG_USED >>> 2)]!,
    u32[w + (PG_FREE >>> 2)]!,
    u32[w + (PG_LOCAL_FREE >>> 2)]!,
    Atomics.load(u32, w + (PG_THREAD_FREE >>> 2)),
    Atomics.load(u32, w + (PG_OWNER >>> 2)),
    Atomics.load(u32, w + (PG_COLLECTS >>> 2)),
  ];
}

function sameSnapshot(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Reads the page in use at `page` until two snapshots of its descriptor agree around the
 * read (another thread may be allocating from it or freeing into it), then reports it.
 */
function walkPage(t: MiContext, site: PageSite, visit: (region: HeapRegion) => void): void {
  const { page } = site;
  let read: PageRead | null = null;
  let failure: unknown = null;
  for (let attempt = 0; attempt < MAX_PAGE_READS && read === null; attempt++) {
    const before = pageSnapshot(t.u32, page);
    let result: PageRead | null = null;
    try {
      result = readPage(t, site);
    } catch (error) {
      failure = error;
    }
    if (sameSnapshot(before, pageSnapshot(t.u32, page))) {
      // A stable descriptor with a bad list is damage, not a race.
      if (result === null) throw failure;
      read = result;
    }
  }
  if (read === null) corrupt(`page ${hex(page)} changed under each of ${MAX_PAGE_READS} reads (or its lists are damaged)`);
  reportPage(t, site, read, visit);
}

/**
 * One read of a page in use: its geometry checked as `check()` does, and the state of each
 * extended block from its three lists and the delayed and buffered blocks found in it.
 * @throws AllocError `HeapCorrupted` for a page whose descriptor or lists are inconsistent
 */
function readPage(t: MiContext, site: PageSite): PageRead {
  const { segment, index, shift, kind, page, delayed, buffered } = site;
  const u32 = t.u32;
  const w = page >>> 2;
  const where = `page ${hex(page)}`;
  const bin = u32[w + (PG_BIN >>> 2)]!;
  if (bin < 1 || bin > BIN_MAX) corrupt(`${where}: bin ${bin} out of range`);
  const blockSize = u32[w + (PG_BLOCK_SIZE >>> 2)]!;
  if (blockSize !== BIN_BLOCK_SIZE[bin]) corrupt(`${where}: block size ${blockSize} is not bin ${bin}'s`);
  if (segmentKindFor(blockSize) !== kind) corrupt(`${where}: blocks of ${blockSize} bytes in a ${PAGE_KIND_NAMES[kind]} segment`);
  const start = pageStartFor(segment, index, shift, blockSize);
  if (u32[w + (PG_START >>> 2)] !== start) corrupt(`${where}: start ${hex(u32[w + (PG_START >>> 2)]!)} should be ${hex(start)}`);
  const reserved = Math.floor((segment + (index + 1) * 2 ** shift - start) / blockSize);
  if (u32[w + (PG_RESERVED >>> 2)] !== reserved) corrupt(`${where}: reserved ${u32[w + (PG_RESERVED >>> 2)]} should be ${reserved}`);
  const capacity = u32[w + (PG_CAPACITY >>> 2)]!;
  if (capacity < 1 || capacity > reserved) corrupt(`${where}: capacity ${capacity} outside 1..${reserved}`);
  const states = new Uint8Array(capacity);
  const free = markList(t, page, start, blockSize, states, u32[w + (PG_FREE >>> 2)]!, ON_FREE);
  const local = markList(t, page, start, blockSize, states, u32[w + (PG_LOCAL_FREE >>> 2)]!, ON_LOCAL_FREE);
  const word = Atomics.load(u32, w + (PG_THREAD_FREE >>> 2));
  const threadFree = markList(t, page, start, blockSize, states, word - (word & DELAYED_MASK), ON_THREAD_FREE);
  let pending = threadFree;
  for (const [blocks, state] of [
    [delayed, ON_DELAYED],
    [buffered, IN_BUFFER],
  ] as const) {
    for (const block of blocks ?? []) {
      const k = (block - start) / blockSize;
      if (!Number.isInteger(k) || k < 0 || k >= capacity)
        corrupt(`${where}: a block of its ${LIST_NAMES[state]} (${hex(block)}) is not one of its extended blocks`);
      if (states[k] !== LIVE) corrupt(`${where}: a block of its ${LIST_NAMES[state]} (${hex(block)}) is also on its ${LIST_NAMES[states[k]!]}`);
      states[k] = state;
      pending++;
    }
  }
  const used = u32[w + (PG_USED >>> 2)]!;
  // Invariant 1 of layout.ts: blocks on thread_free and delayed lists (and in remote-free
  // buffers) still count in `used`.
  if (used + free + local !== capacity) corrupt(`${where}: used ${used} + free ${free} + local_free ${local} != capacity ${capacity}`);
  if (pending > used) corrupt(`${where}: ${pending} blocks wait on thread_free, delayed lists and buffers but only ${used} are in use`);
  return { states, bin, blockSize, start, capacity, reserved, owner: Atomics.load(u32, w + (PG_OWNER >>> 2)) };
}

/**
 * Marks the blocks of the page list starting at `head` as `state`; returns their count.
 * Bounded by the page's capacity: every link must be an extended block of the page that no
 * list holds yet.
 * @throws AllocError `HeapCorrupted` for a link off the page's grid, or a block met twice
 */
function markList(t: MiContext, page: number, start: number, blockSize: number, states: Uint8Array, head: number, state: number): number {
  const u32 = t.u32;
  const w = page >>> 2;
  const capacity = states.length;
  let count = 0;
  for (let block = head; block !== 0; ) {
    const at = block - start;
    if (at < 0 || at >= capacity * blockSize || at % blockSize !== 0) {
      corrupt(`page ${hex(page)}: its ${LIST_NAMES[state]} holds ${hex(block)}, not one of its extended blocks`);
    }
    const k = at / blockSize;
    if (states[k] !== LIVE) corrupt(`page ${hex(page)}: block ${hex(block)} is twice on its lists (${LIST_NAMES[states[k]!]}, ${LIST_NAMES[state]})`);
    states[k] = state;
    count++;
    const link = u32[block >>> 2]!;
    block = t.secure ? decodeLink(link, u32[w + (PG_KEY0 >>> 2)]!, u32[w + (PG_KEY1 >>> 2)]!) : link;
  }
  return count;
}

/** The regions of a page read whole: padding, its extended blocks, and its tail. */
function reportPage(t: MiContext, site: PageSite, read: PageRead, visit: (region: HeapRegion) => void): void {
  const { segment, index, shift, kind, page } = site;
  const { states, bin, blockSize, start, capacity, reserved, owner } = read;
  const pageBegin = index === 0 ? segment + SEGMENT_HEADER_BYTES : segment + index * 2 ** shift;
  const pageEnd = segment + (index + 1) * 2 ** shift;
  const flags = t.u32[(page + PG_FLAGS) >>> 2]!;
  const held = t.qsbr !== null && heldGoal(t, page) !== 0;
  const pageNote = `${PAGE_KIND_NAMES[kind]} page ${index}${(flags & PAGE_IN_FULL) !== 0 ? ', full' : ''}${held ? ', held' : ''}${owner === 0 ? ', abandoned' : ''}`;
  const thread = ownerOf(owner);
  if (start > pageBegin) visit({ address: pageBegin, bytes: start - pageBegin, kind: 'header', detail: `alignment padding of ${pageNote}` });
  const cls = `bin ${bin} (${blockSize} B)`;
  for (let k = 0; k < capacity; k++) {
    const state = states[k]!;
    const address = start + k * blockSize;
    if (state === LIVE) visit({ address, bytes: blockSize, kind: 'live', detail: `${cls}, ${pageNote}`, ...thread });
    else visit({ address, bytes: blockSize, kind: 'free', detail: `${cls}, ${LIST_NAMES[state]}, ${pageNote}`, ...thread });
  }
  const blocksEnd = start + reserved * blockSize;
  if (blocksEnd < pageEnd) visit({ address: blocksEnd, bytes: pageEnd - blocksEnd, kind: 'header', detail: `tail of ${pageNote} too small for a block` });
}

/**
 * Every block on every heap's delayed list, by the descriptor of its page. Each link is
 * checked (`delayedNext`) and the walk stops at a block met twice, so a damaged list throws
 * and never loops.
 * @throws AllocError `HeapCorrupted` for a bad link or a cycle
 */
function delayedBlocksByPage(t: MiContext): Map<number, number[]> {
  const byPage = new Map<number, number[]>();
  const seen = new Set<number>();
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const heap = t.heapOf(threadId);
    const head = Atomics.load(t.u32, (heap + HP_DELAYED_FREE) >>> 2);
    if (head !== 0 && !isPagedBlockAddress(t, head)) corrupt(`thread ${threadId}'s delayed list starts at ${hex(head)}, no block of a paged segment`);
    for (let block = head; block !== 0; block = delayedNext(t, heap, block)) {
      if (seen.has(block)) corrupt(`block ${hex(block)} is twice on delayed lists (a cycle?)`);
      seen.add(block);
      const page = pageOfBlock(t, block);
      const list = byPage.get(page);
      if (list === undefined) byPage.set(page, [block]);
      else list.push(block);
    }
  }
  return byPage;
}

function isPagedBlockAddress(t: MiContext, address: number): boolean {
  if (address < t.arenaStart || address >= t.arenaEnd || (address & 7) !== 0) return false;
  const kind = t.mapOf(address) & MAP_KIND_MASK;
  return kind === SEGMENT_SMALL || kind === SEGMENT_MEDIUM || kind === SEGMENT_LARGE;
}
