/**
 * `check()`: walks every segment, page, free list, page queue, direct table, delayed list,
 * free-slot list and the abandoned list, and verifies the invariants stated in `layout.ts`,
 * `segment.ts` and `page.ts`. Call it while no other thread is inside the allocator (tests
 * call it once workers have finished); it reads atomic words with `Atomics.load`.
 *
 * One record is not held to the heap-record invariants: that of a thread awaiting its
 * release, which died (or is being reaped) with its record still `HP_ACTIVE` and its slot no
 * longer its own (`awaitingRelease`). Its queues, direct table, held list, free-slot lists
 * and delayed list are whatever it left (it may have died anywhere inside its own abandon:
 * pages half out of their queues, segments half disowned), and `releaseThread(id, true)`
 * rebuilds everything of it from its pages (`dead-heap.ts`), trusting none of them. Core
 * runs check() between the two when the thread died holding the segment lock (its repair is
 * verified before the reaper releases the thread), so check() must pass then. Its pages are
 * still checked one by one, and its remote-free record too.
 */

import { type CheckReport, heapCorrupted, hex } from '@heaplab/core/backend';

import type { MiContext } from './context.js';
import { delayedNext } from './delayed-list.js';
import { heldRecordWord } from './held-pages.js';
import { pageDescriptor, pageShiftOf, pageStartFor, SEGMENT_USABLE_BYTES } from './internal.js';
import {
  BACKEND_NAME,
  BLOCK_MARKER,
  CACHE_RELEASING,
  DELAYED_FREEING,
  DELAYED_MASK,
  DIRECT_WSIZE_MAX,
  HP_ACTIVE,
  HP_DELAYED_FREE,
  HP_DIRECT,
  HP_DRAINS,
  HP_HELD_BYTES,
  HP_HELD_FIRST,
  HP_HELD_LAST,
  HP_HELD_PAGES,
  HP_MEDIUM_SEGMENTS,
  HP_RF_RESOLVER,
  HP_RF_STEP,
  HP_RB_COUNT,
  HP_RB_LIMIT,
  HP_SEGMENT_CACHE,
  HP_SMALL_SEGMENTS,
  HR_GOAL,
  HR_NEXT,
  HR_PREV,
  IN_OP,
  IN_SEGMENT,
  MAP_KIND_MASK,
  MAP_SHIFT_BITS,
  NEVER_DELAYED_FREE,
  PAGE_DESCRIPTOR_BYTES,
  PAGE_IN_FULL,
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
  PG_START,
  PG_THREAD_FREE,
  PG_USED,
  QUEUE_FIRST,
  QUEUE_LAST,
  RB_CAPACITY,
  RF_CODE_MASK,
  SEGMENT_BYTES,
  SEGMENT_HEADER_BYTES,
  SEGMENT_HUGE,
  SEGMENT_HUGE_TAIL,
  SEGMENT_LARGE,
  SEGMENT_MAP_ENTRIES,
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
  SG_PREV,
  SG_SPAN,
  SG_USED_PAGES,
  ST_ABANDONED,
  ST_ABANDONED_COUNT,
  ST_MAGIC,
  ST_PEAK_USED,
  STATE_MAGIC,
} from './layout.js';
import { queueOf } from './page-queue.js';
import { liveTotals } from './peak.js';
import { recordLive } from './remote.js';
import { bufferedBlocks } from './remote-buffer.js';
import { decodeLink, freedMarker } from './secure.js';
import { BIN_BLOCK_SIZE, BIN_FULL, BIN_MAX, binOfWords, segmentKindFor } from './size-classes.js';

/** What the walk learnt of one in-use page, for the cross-checks with queues and lists. */
interface PageFacts {
  owner: number;
  used: number;
  threadFree: number;
  delayed: number;
  /** Blocks in remote-free buffers. */
  buffered: number;
  /** The blocks on its free, local_free and thread_free lists, and in buffers. */
  listed: Set<number>;
  blockSize: number;
  queued: boolean;
  /** QSBR goal of a held page, else 0. */
  goal: number;
  /** Seen on a held list. */
  heldListed: boolean;
}

function corrupt(message: string): never {
  throw heapCorrupted(BACKEND_NAME, `heap: ${message}`);
}

/**
 * Verifies every invariant of the heap.
 * @throws AllocError `HeapCorrupted` naming the first violation and its address
 */
export function checkHeap(t: MiContext): CheckReport {
  const u32 = t.u32;
  if (u32[(t.state + ST_MAGIC) >>> 2] !== STATE_MAGIC) corrupt(`control state at ${hex(t.state)} is not formatted`);
  t.pool.check();
  const op = u32[t.intent + (IN_OP >>> 2)]!;
  if (op !== 0)
    corrupt(
      `the segment lock's intent record names operation ${op} on ${hex(u32[t.intent + (IN_SEGMENT >>> 2)]!)}: its holder died and the lock was not recovered`,
    );
  if (t.pools.publishedCount() < 1) corrupt('core records no pool range for a formatted heap');
  const pages = new Map<number, PageFacts>();
  const ownedSegments = new Map<number, number>();
  const abandoned = new Set<number>();
  let liveBlocks = 0;
  let usedBytes = 0;
  let freeBlocks = 0;
  let freeBytes = 0;
  let segments = 0;
  let tailLeft = 0;
  // Each heap's cached segment (invariant 3 of segment.ts): the only segments in use that
  // may have no page in use.
  const cached = new Map<number, number>();
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const segment = u32[(t.heapOf(threadId) + HP_SEGMENT_CACHE) >>> 2]!;
    if (segment === 0) continue;
    if ((segment & CACHE_RELEASING) !== 0) corrupt(`thread ${threadId}'s cached segment ${hex(segment)} is still being given back`);
    if (cached.has(segment)) corrupt(`segment ${hex(segment)} is cached by two heaps`);
    cached.set(segment, threadId);
  }
  for (let index = 0; index < SEGMENT_MAP_ENTRIES; index++) {
    const map = u32[t.segmentMap + index]!;
    const kind = map & MAP_KIND_MASK;
    const segment = index * SEGMENT_BYTES;
    if (kind === SEGMENT_HUGE_TAIL) {
      if (tailLeft-- <= 0) corrupt(`segment ${hex(segment)} is marked as the tail of a huge block that does not span it`);
      continue;
    }
    if (tailLeft > 0) corrupt(`segment ${hex(segment)} should be the tail of a huge block (map word ${hex(map)})`);
    if (kind === 0) continue;
    segments++;
    const s = segment >>> 2;
    const where = `segment ${hex(segment)}`;
    if (segment < t.arenaStart || segment >= t.arenaEnd) corrupt(`${where} is in use but outside the arena`);
    if (u32[s + (SG_MAGIC >>> 2)] !== segmentMagic(segment, t.cookie)) corrupt(`${where} has a bad magic`);
    if (u32[s + (SG_KIND >>> 2)] !== kind) corrupt(`${where}: header kind ${u32[s + (SG_KIND >>> 2)]} differs from the map's ${kind}`);
    if (kind === SEGMENT_HUGE) {
      const span = u32[s + (SG_SPAN >>> 2)]!;
      const block = u32[s + (SG_HUGE_BLOCK >>> 2)]!;
      const usable = u32[s + (SG_HUGE_SIZE >>> 2)]!;
      if (span < 1 || segment + span * SEGMENT_BYTES > t.arenaEnd) corrupt(`${where}: huge span ${span} runs out of the arena`);
      if (block < segment + SEGMENT_HEADER_BYTES || block > segment + SEGMENT_BYTES) corrupt(`${where}: huge block ${hex(block)} is misplaced`);
      if (usable > segment + span * SEGMENT_BYTES - block || usable > span * SEGMENT_USABLE_BYTES) {
        corrupt(`${where}: huge block of ${usable} bytes does not fit its span`);
      }
      tailLeft = span - 1;
      liveBlocks++;
      usedBytes += usable;
      continue;
    }
    if (kind > SEGMENT_LARGE) corrupt(`${where}: unknown kind ${kind}`);
    const shift = pageShiftOf(kind);
    if (map >>> MAP_SHIFT_BITS !== shift || u32[s + (SG_PAGE_SHIFT >>> 2)] !== shift) corrupt(`${where}: page shift is not ${shift}`);
    const pageCount = 2 ** (SEGMENT_SHIFT - shift);
    if (u32[s + (SG_PAGE_COUNT >>> 2)] !== pageCount) corrupt(`${where}: page count is not ${pageCount}`);
    const owner = Atomics.load(u32, s + (SG_OWNER >>> 2));
    if (owner > t.maxThreads) corrupt(`${where}: owner ${owner} is not a thread id`);
    if (owner === 0) abandoned.add(segment);
    else ownedSegments.set(segment, owner);
    let inUse = 0;
    for (let i = 0; i < pageCount; i++) {
      const page = pageDescriptor(segment, i);
      const w = page >>> 2;
      if ((u32[w + (PG_FLAGS >>> 2)]! & PAGE_IN_USE) === 0) {
        if (u32[w + (PG_CAPACITY >>> 2)] !== 0) corrupt(`page ${hex(page)} is free but has capacity ${u32[w + (PG_CAPACITY >>> 2)]}`);
        const record = heldRecordWord(t, page);
        if (u32[record + (HR_GOAL >>> 2)] !== 0 || u32[record + (HR_NEXT >>> 2)] !== 0 || u32[record + (HR_PREV >>> 2)] !== 0)
          corrupt(`page ${hex(page)} is free in its segment but held`);
        continue;
      }
      inUse++;
      const facts = checkPage(t, page, segment, i, shift, kind, owner);
      pages.set(page, facts);
      freeBlocks += u32[w + (PG_CAPACITY >>> 2)]! - facts.used;
      freeBytes += (u32[w + (PG_CAPACITY >>> 2)]! - facts.used) * facts.blockSize;
    }
    if (u32[s + (SG_USED_PAGES >>> 2)] !== inUse) corrupt(`${where}: used page count ${u32[s + (SG_USED_PAGES >>> 2)]} but ${inUse} pages are in use`);
    const cacher = cached.get(segment);
    if (cacher === undefined) {
      if (inUse === 0) corrupt(`${where} has no page in use but was not given back to the pool`);
    } else {
      if (inUse !== 0) corrupt(`${where} is thread ${cacher}'s cached segment but has ${inUse} pages in use`);
      if (owner !== cacher) corrupt(`${where} is thread ${cacher}'s cached segment but owned by ${owner}`);
      cached.delete(segment);
    }
  }
  if (tailLeft > 0) corrupt('a huge block runs past the segment map');
  // Invariant 1 of segment.ts: the pool's allocated segments are the map's segments in use.
  let mapped = 0;
  for (let index = 0; index < SEGMENT_MAP_ENTRIES; index++) if (u32[t.segmentMap + index] !== 0) mapped++;
  if (t.pool.usedPages() !== mapped) corrupt(`the pool has ${t.pool.usedPages()} segments allocated but the segment map names ${mapped}`);
  for (const [segment, threadId] of cached) corrupt(`thread ${threadId}'s cached segment ${hex(segment)} is not a paged segment in use`);

  // The abandoned list holds exactly the segments with owner 0.
  const countWord = (t.state + ST_ABANDONED_COUNT) >>> 2;
  let listed = 0;
  for (let segment = u32[(t.state + ST_ABANDONED) >>> 2]!; segment !== 0; segment = u32[(segment + SG_NEXT) >>> 2]!) {
    if (!abandoned.has(segment)) corrupt(`abandoned list entry ${hex(segment)} is not an abandoned segment`);
    if (++listed > abandoned.size) corrupt('the abandoned list is longer than the abandoned segments (a cycle)');
  }
  if (listed !== abandoned.size || Atomics.load(u32, countWord) !== listed) {
    corrupt(`${abandoned.size} segments have no owner but the abandoned list holds ${listed} (count ${u32[countWord]})`);
  }

  const awaiting = new Set<number>();
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    if (awaitingRelease(t, threadId)) awaiting.add(threadId);
    checkHeapRecord(t, threadId, pages, ownedSegments, awaiting.has(threadId));
  }

  for (const [page, facts] of pages) {
    const trusted = facts.owner !== 0 && !awaiting.has(facts.owner);
    if (trusted && !facts.queued) corrupt(`page ${hex(page)} of thread ${facts.owner} is in none of its queues`);
    if (trusted && facts.goal !== 0 && !facts.heldListed) corrupt(`held page ${hex(page)} of thread ${facts.owner} is on no held list`);
    const pending = facts.threadFree + facts.delayed + facts.buffered;
    const live = facts.used - pending;
    if (live < 0) corrupt(`page ${hex(page)}: more blocks are being freed than are in use`);
    liveBlocks += live;
    usedBytes += live * facts.blockSize;
    // Freed by other threads, not yet collected: free to the user (as `stats()` and
    // `walk()` count them), though `used` still counts them.
    freeBlocks += pending;
    freeBytes += pending * facts.blockSize;
  }
  const totals = liveTotals(t);
  if (totals.blocks !== liveBlocks || totals.bytes !== usedBytes) {
    corrupt(`usedBytes/liveBlocks report ${totals.bytes}/${totals.blocks} but the walk finds ${usedBytes}/${liveBlocks}`);
  }
  // The sampled peak never exceeds what the pool could hold (usedBytes never does, and the
  // pool only grows); a larger word was written by something else.
  const peak = u32[(t.state + ST_PEAK_USED) >>> 2]!;
  if (peak > t.pool.totalPages() * SEGMENT_USABLE_BYTES) corrupt(`the sampled peak ${peak} exceeds the ${t.pool.totalPages()} segments' usable bytes`);
  const empty = t.emptyPage >>> 2;
  for (let i = 0; i < PAGE_DESCRIPTOR_BYTES / 4; i++) if (u32[empty + i] !== 0) corrupt(`the empty page descriptor at ${hex(t.emptyPage)} was written`);
  return { blocks: liveBlocks + freeBlocks, liveBlocks, freeBlocks, usedBytes, freeBytes, pools: segments };
}

/** Walks one free list of a page; returns its length. Every block must be a free block. */
function walkList(t: MiContext, page: number, head: number, seen: Set<number>, what: string, decode: boolean): number {
  const u32 = t.u32;
  const w = page >>> 2;
  const blockSize = u32[w + (PG_BLOCK_SIZE >>> 2)]!;
  const start = u32[w + (PG_START >>> 2)]!;
  const capacity = u32[w + (PG_CAPACITY >>> 2)]!;
  let count = 0;
  for (let block = head; block !== 0; ) {
    const at = block - start;
    if (at < 0 || at >= capacity * blockSize || at % blockSize !== 0) corrupt(`page ${hex(page)}: ${what} holds ${hex(block)}, not one of its blocks`);
    if (seen.has(block)) corrupt(`page ${hex(page)}: block ${hex(block)} is twice on its free lists (${what})`);
    seen.add(block);
    if (t.i32[(block + BLOCK_MARKER) >>> 2] !== freedMarker(block, t.cookie))
      corrupt(`page ${hex(page)}: free block ${hex(block)} (${what}) lost its freed marker`);
    count++;
    const link = u32[block >>> 2]!;
    block = decode && t.secure ? decodeLink(link, u32[w + (PG_KEY0 >>> 2)]!, u32[w + (PG_KEY1 >>> 2)]!) : link;
  }
  return count;
}

function checkPage(t: MiContext, page: number, segment: number, index: number, shift: number, kind: number, owner: number): PageFacts {
  const u32 = t.u32;
  const w = page >>> 2;
  const where = `page ${hex(page)}`;
  const bin = u32[w + (PG_BIN >>> 2)]!;
  if (bin < 1 || bin > BIN_MAX) corrupt(`${where}: bin ${bin} out of range`);
  const blockSize = u32[w + (PG_BLOCK_SIZE >>> 2)]!;
  if (blockSize !== BIN_BLOCK_SIZE[bin]) corrupt(`${where}: block size ${blockSize} is not bin ${bin}'s`);
  if (segmentKindFor(blockSize) !== kind) corrupt(`${where}: blocks of ${blockSize} bytes in a segment of kind ${kind}`);
  const start = pageStartFor(segment, index, shift, blockSize);
  if (u32[w + (PG_START >>> 2)] !== start) corrupt(`${where}: start ${hex(u32[w + (PG_START >>> 2)]!)} should be ${hex(start)}`);
  const reserved = Math.floor((segment + (index + 1) * 2 ** shift - start) / blockSize);
  if (u32[w + (PG_RESERVED >>> 2)] !== reserved) corrupt(`${where}: reserved ${u32[w + (PG_RESERVED >>> 2)]} should be ${reserved}`);
  const capacity = u32[w + (PG_CAPACITY >>> 2)]!;
  if (capacity < 1 || capacity > reserved) corrupt(`${where}: capacity ${capacity} outside 1..${reserved}`);
  if (u32[w + (PG_EXTENT >>> 2)] !== capacity * blockSize) corrupt(`${where}: extent ${u32[w + (PG_EXTENT >>> 2)]} is not capacity ${capacity} x ${blockSize}`);
  if (Atomics.load(u32, w + (PG_OWNER >>> 2)) !== owner) corrupt(`${where}: owner ${u32[w + (PG_OWNER >>> 2)]} differs from its segment's ${owner}`);
  const seen = new Set<number>();
  const free = walkList(t, page, u32[w + (PG_FREE >>> 2)]!, seen, 'free', true);
  const local = walkList(t, page, u32[w + (PG_LOCAL_FREE >>> 2)]!, seen, 'local_free', true);
  const word = Atomics.load(u32, w + (PG_THREAD_FREE >>> 2));
  const state = word & DELAYED_MASK;
  const threadFree = walkList(t, page, word - state, seen, 'thread_free', true);
  const used = u32[w + (PG_USED >>> 2)]!;
  if (used + free + local !== capacity) corrupt(`${where}: used ${used} + free ${free} + local_free ${local} != capacity ${capacity}`);
  if (threadFree > used) corrupt(`${where}: ${threadFree} blocks on thread_free but only ${used} in use`);
  if (state === DELAYED_FREEING) corrupt(`${where}: a remote free is stuck between its two steps`);
  if ((Atomics.load(u32, w + (PG_COLLECTS >>> 2)) & 1) !== 0) corrupt(`${where}: a collect of its thread_free list never finished`);
  if (owner === 0 && state !== NEVER_DELAYED_FREE) corrupt(`${where}: abandoned page in delayed state ${state}`);
  if ((u32[w + (PG_FLAGS >>> 2)]! & PAGE_IN_FULL) !== 0 && owner === 0) corrupt(`${where}: abandoned page marked full`);
  const record = heldRecordWord(t, page);
  const goal = t.i32[record + (HR_GOAL >>> 2)]!;
  const linked = u32[record + (HR_NEXT >>> 2)] !== 0 || u32[record + (HR_PREV >>> 2)] !== 0;
  if (goal === 0) {
    if (linked) corrupt(`${where} is not held but has held-list links`);
  } else {
    if (t.qsbr === null) corrupt(`${where} is held but the heap has no delayed page reuse`);
    if ((goal & 1) === 0) corrupt(`${where}: held with goal ${goal}, not a QSBR sequence (odd)`);
    if (used !== 0) corrupt(`${where} is held but has ${used} blocks in use`);
    if (u32[w + (PG_FREE >>> 2)] !== 0) corrupt(`${where} is held but its free list is not empty (the fast path could allocate from it)`);
    if ((u32[w + (PG_FLAGS >>> 2)]! & PAGE_IN_FULL) !== 0) corrupt(`${where} is held but marked full`);
    if (owner === 0 && linked) corrupt(`${where} is held and abandoned but has held-list links`);
  }
  return { owner, used, threadFree, delayed: 0, buffered: 0, listed: seen, blockSize, queued: false, goal, heldListed: false };
}

/**
 * Whether thread `threadId`'s heap record awaits `releaseThread(id, true)`: it still says
 * `HP_ACTIVE` (its thread never finished its abandon), but the slot is no longer held by the
 * thread that wrote it (dead and being reaped, or left `releasing` by a death inside its own
 * detach).
 */
function awaitingRelease(t: MiContext, threadId: number): boolean {
  return t.u32[(t.heapOf(threadId) + HP_ACTIVE) >>> 2] === 1 && !recordLive(t, threadId);
}

/**
 * Checks the heap record of `threadId` against the pages walked; for a record awaiting its
 * release (`awaiting`), only its remote-free record (see the header).
 */
function checkHeapRecord(t: MiContext, threadId: number, pages: Map<number, PageFacts>, owned: Map<number, number>, awaiting: boolean): void {
  const u32 = t.u32;
  const heap = t.heapOf(threadId);
  const who = `thread ${threadId}'s heap`;
  const remote = Atomics.load(u32, (heap + HP_RF_STEP) >>> 2);
  if (remote !== 0) {
    corrupt(
      `${who}: a remote free of the block at ${hex(remote - (remote & RF_CODE_MASK))} is in flight at step ${remote & RF_CODE_MASK} (its thread died and was not reaped?)`,
    );
  }
  if (Atomics.load(u32, (heap + HP_RF_RESOLVER) >>> 2) !== 0) corrupt(`${who}: its remote-free record names a resolver but no remote free`);
  checkRemoteBuffer(t, threadId, pages, awaiting);
  if (awaiting) return;
  if ((Atomics.load(u32, (heap + HP_DRAINS) >>> 2) & 1) !== 0) corrupt(`${who}: a drain of its delayed list never finished`);
  for (let bin = 1; bin <= BIN_FULL; bin++) {
    const q = queueOf(heap, bin);
    let prev = 0;
    let count = 0;
    for (let page = u32[(q + QUEUE_FIRST) >>> 2]!; page !== 0; page = u32[(page + PG_NEXT) >>> 2]!) {
      const facts = pages.get(page);
      if (facts === undefined) corrupt(`${who}: queue ${bin} holds ${hex(page)}, not a page in use`);
      if (facts.owner !== threadId) corrupt(`${who}: queue ${bin} holds page ${hex(page)} of thread ${facts.owner}`);
      if (facts.queued) corrupt(`${who}: page ${hex(page)} is in two queues (or a queue has a cycle)`);
      facts.queued = true;
      const full = (u32[(page + PG_FLAGS) >>> 2]! & PAGE_IN_FULL) !== 0;
      if (full !== (bin === BIN_FULL)) corrupt(`${who}: page ${hex(page)} in queue ${bin} has its full flag ${full ? 'set' : 'clear'}`);
      if (bin !== BIN_FULL && u32[(page + PG_BIN) >>> 2] !== bin) corrupt(`${who}: page ${hex(page)} of bin ${u32[(page + PG_BIN) >>> 2]} is in queue ${bin}`);
      if (u32[(page + PG_PREV) >>> 2] !== prev)
        corrupt(`${who}: page ${hex(page)} has previous link ${hex(u32[(page + PG_PREV) >>> 2]!)}, expected ${hex(prev)}`);
      prev = page;
      if (++count > pages.size) corrupt(`${who}: queue ${bin} has a cycle`);
    }
    if (u32[(q + QUEUE_LAST) >>> 2] !== prev) corrupt(`${who}: queue ${bin} ends at ${hex(prev)} but records ${hex(u32[(q + QUEUE_LAST) >>> 2]!)}`);
  }
  const direct = (heap + HP_DIRECT) >>> 2;
  for (let wsize = 0; wsize <= DIRECT_WSIZE_MAX; wsize++) {
    const first = u32[(queueOf(heap, binOfWords(wsize === 0 ? 1 : wsize)) + QUEUE_FIRST) >>> 2]!;
    const expected = first === 0 ? t.emptyPage : first;
    if (u32[direct + wsize] !== expected) corrupt(`${who}: direct entry ${wsize} is ${hex(u32[direct + wsize]!)}, expected ${hex(expected)}`);
  }
  let delayed = 0;
  for (let block = Atomics.load(u32, (heap + HP_DELAYED_FREE) >>> 2); block !== 0; block = delayedNext(t, heap, block)) {
    const map = t.mapOf(block);
    const segment = block - (block & SEGMENT_MASK);
    const page = pageDescriptor(segment, (block & SEGMENT_MASK) >>> (map >>> MAP_SHIFT_BITS));
    const facts = pages.get(page);
    if (facts === undefined || facts.owner !== threadId) corrupt(`${who}: delayed block ${hex(block)} is not in one of its pages`);
    if (t.i32[(block + BLOCK_MARKER) >>> 2] !== freedMarker(block, t.cookie)) corrupt(`${who}: delayed block ${hex(block)} lost its freed marker`);
    facts.delayed++;
    if (++delayed > 1 << 26) corrupt(`${who}: the delayed list has a cycle`);
  }
  let heldPrev = 0;
  let heldCount = 0;
  let heldBytes = 0;
  for (let page = u32[(heap + HP_HELD_FIRST) >>> 2]!; page !== 0; ) {
    const facts = pages.get(page);
    if (facts === undefined) corrupt(`${who}: held list holds ${hex(page)}, not a page in use`);
    if (facts.owner !== threadId) corrupt(`${who}: held list holds page ${hex(page)} of thread ${facts.owner}`);
    if (facts.goal === 0) corrupt(`${who}: held list holds page ${hex(page)}, which has no goal`);
    if (facts.heldListed) corrupt(`${who}: page ${hex(page)} is twice on held lists (or the list has a cycle)`);
    facts.heldListed = true;
    const record = heldRecordWord(t, page);
    if (u32[record + (HR_PREV >>> 2)] !== heldPrev)
      corrupt(`${who}: held page ${hex(page)} has previous link ${hex(u32[record + (HR_PREV >>> 2)]!)}, expected ${hex(heldPrev)}`);
    heldPrev = page;
    heldBytes += u32[(page + PG_CAPACITY) >>> 2]! * facts.blockSize;
    if (++heldCount > pages.size) corrupt(`${who}: the held list has a cycle`);
    page = u32[record + (HR_NEXT >>> 2)]!;
  }
  if (u32[(heap + HP_HELD_LAST) >>> 2] !== heldPrev)
    corrupt(`${who}: held list ends at ${hex(heldPrev)} but records ${hex(u32[(heap + HP_HELD_LAST) >>> 2]!)}`);
  if (u32[(heap + HP_HELD_PAGES) >>> 2] !== heldCount || u32[(heap + HP_HELD_BYTES) >>> 2] !== heldBytes) {
    corrupt(
      `${who}: counts ${u32[(heap + HP_HELD_PAGES) >>> 2]} held pages of ${u32[(heap + HP_HELD_BYTES) >>> 2]} bytes, its list ${heldCount} of ${heldBytes}`,
    );
  }
  for (const [field, kind] of [
    [HP_SMALL_SEGMENTS, SEGMENT_SMALL],
    [HP_MEDIUM_SEGMENTS, SEGMENT_MEDIUM],
  ] as const) {
    let prev = 0;
    let count = 0;
    for (let segment = u32[(heap + field) >>> 2]!; segment !== 0; segment = u32[(segment + SG_NEXT) >>> 2]!) {
      if (owned.get(segment) !== threadId) corrupt(`${who}: free-slot list holds ${hex(segment)}, not one of its segments`);
      if (u32[(segment + SG_KIND) >>> 2] !== kind) corrupt(`${who}: segment ${hex(segment)} is on the wrong free-slot list`);
      if (u32[(segment + SG_USED_PAGES) >>> 2]! >= u32[(segment + SG_PAGE_COUNT) >>> 2]!)
        corrupt(`${who}: full segment ${hex(segment)} is on a free-slot list`);
      if (u32[(segment + SG_PREV) >>> 2] !== prev) corrupt(`${who}: segment ${hex(segment)} has a bad previous link`);
      prev = segment;
      count++;
      if (count > SEGMENT_MAP_ENTRIES) corrupt(`${who}: a free-slot list has a cycle`);
    }
    for (const [segment, owner] of owned) {
      if (owner !== threadId || u32[(segment + SG_KIND) >>> 2] !== kind) continue;
      const cachedHere = u32[(heap + HP_SEGMENT_CACHE) >>> 2] === segment;
      if (cachedHere && onList(u32, u32[(heap + field) >>> 2]!, segment)) corrupt(`${who}: its cached segment ${hex(segment)} is on a free-slot list`);
      if (!cachedHere && u32[(segment + SG_USED_PAGES) >>> 2]! < u32[(segment + SG_PAGE_COUNT) >>> 2]! && !onList(u32, u32[(heap + field) >>> 2]!, segment)) {
        corrupt(`${who}: segment ${hex(segment)} has a free page slot but is on no free-slot list`);
      }
    }
  }
}

/**
 * Invariant 13 of `layout.ts` for thread `threadId`'s remote-free buffer: empty unless its
 * thread is attached and alive; else blocks of one page in use, each an extended block with
 * its marker, on none of the page's lists nor in another buffer. Counts them in the page's
 * facts.
 */
function checkRemoteBuffer(t: MiContext, threadId: number, pages: Map<number, PageFacts>, awaiting: boolean): void {
  const u32 = t.u32;
  const heap = t.heapOf(threadId);
  const who = `thread ${threadId}'s remote-free buffer`;
  const count = u32[(heap + HP_RB_COUNT) >>> 2]!;
  if (count === 0) return;
  if (awaiting || u32[(heap + HP_ACTIVE) >>> 2] !== 1) corrupt(`${who} holds ${count} blocks, but its thread is gone (it died and was not reaped?)`);
  if (count > RB_CAPACITY || count > u32[(heap + HP_RB_LIMIT) >>> 2]!) corrupt(`${who} counts ${count} blocks, beyond its limit`);
  const buffered = bufferedBlocks(t, threadId)!;
  const facts = pages.get(buffered.page);
  if (facts === undefined) corrupt(`${who} holds blocks of ${hex(buffered.page)}, not a page in use`);
  const w = buffered.page >>> 2;
  const start = u32[w + (PG_START >>> 2)]!;
  const capacity = u32[w + (PG_CAPACITY >>> 2)]!;
  for (const block of buffered.blocks) {
    const at = block - start;
    if (at < 0 || at >= capacity * facts.blockSize || at % facts.blockSize !== 0)
      corrupt(`${who} holds ${hex(block)}, not a block of page ${hex(buffered.page)}`);
    if (facts.listed.has(block)) corrupt(`${who} holds block ${hex(block)}, which a list or another buffer holds too`);
    facts.listed.add(block);
    if (t.i32[(block + BLOCK_MARKER) >>> 2] !== freedMarker(block, t.cookie)) corrupt(`${who} holds block ${hex(block)}, which lost its freed marker`);
  }
  facts.buffered += count;
}

function onList(u32: Uint32Array, head: number, segment: number): boolean {
  for (let s = head; s !== 0; s = u32[(s + SG_NEXT) >>> 2]!) if (s === segment) return true;
  return false;
}
