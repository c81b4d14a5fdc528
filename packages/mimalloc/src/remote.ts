/**
 * Remote frees (mimalloc's `_mi_free_block_mt`) that survive the death of the freeing thread
 * at any step, and the resolver that finishes a dead thread's remote free. The record, its
 * codes and invariants 9 to 12 are in `layout.ts` ("A remote free in flight").
 *
 * The freeing thread names each step in its own heap record before it takes it. When it
 * dies, its reaper (`releaseThread(id, true)`), a complete drain that finds a page claimed
 * by it, or the next thread to take its id, becomes the record's resolver and finishes the
 * free from the step named: the block is freed exactly once, or, in the one case the heap
 * cannot tell whether the freer's last compare-and-swap happened (a take of the list since),
 * left alone and counted with `reportLoss`.
 *
 * Remote frees into one page are gathered in the thread's remote-free buffer and pushed as
 * one chain (`layout.ts`, "The remote-free buffer"): the steps below push a chain from its
 * head `block` to its `tail` (the same block when alone), and a resolver flushes a dead
 * thread's buffer after its record.
 */

import { AllocError, heapCorrupted, hex, park } from '@heaplab/core/backend';

import { type MiContext, reachStep } from './context.js';
import { delayedListHolds } from './delayed-list.js';
import { addEvent, pageListHas } from './internal.js';
import {
  BACKEND_NAME,
  BLOCK_MARKER,
  DELAYED_FREEING,
  DELAYED_MASK,
  HeapEvent,
  HP_DELAYED_FREE,
  HP_DELAYED_KEY0,
  HP_DELAYED_KEY1,
  HP_DRAINS,
  HP_GENERATION,
  HP_RF_HEAP,
  HP_RF_PAGE,
  HP_RF_RESOLVER,
  HP_RF_SEQ,
  HP_RF_STEP,
  HP_RB_BLOCKS,
  HP_RB_COUNT,
  HP_RB_LIMIT,
  HP_RB_PAGE,
  MAP_KIND_MASK,
  MAP_SHIFT_BITS,
  NEVER_DELAYED_FREE,
  NO_DELAYED_FREE,
  PAGE_DESCRIPTOR_SHIFT,
  PAGE_IN_USE,
  PG_BLOCK_SIZE,
  PG_CAPACITY,
  PG_COLLECTS,
  PG_FLAGS,
  PG_KEY0,
  PG_KEY1,
  PG_OWNER,
  PG_START,
  PG_THREAD_FREE,
  RB_CAPACITY,
  RB_MAX_BYTES,
  RESOLVER_GEN_MASK,
  RESOLVER_ID_BITS,
  RF_CLAIMED,
  RF_CLAIMING,
  RF_CODE_MASK,
  RF_DELAYED,
  RF_DELAYING,
  RF_PUSHING,
  SEGMENT_MASK,
  SEGMENT_PAGED_MAX,
  SG_PAGES,
  USE_DELAYED_FREE,
} from './layout.js';
import { encodeLink, freedMarker } from './secure.js';

/** Word offsets of the record's fields from `HP_RF_STEP`. */
const REC_PAGE = (HP_RF_PAGE - HP_RF_STEP) >>> 2;
const REC_SEQ = (HP_RF_SEQ - HP_RF_STEP) >>> 2;
const REC_HEAP = (HP_RF_HEAP - HP_RF_STEP) >>> 2;
/** Word offsets of the remote-free buffer's fields from `HP_RF_STEP` (the same heap record). */
const REC_RB_PAGE = (HP_RB_PAGE - HP_RF_STEP) >>> 2;
const REC_RB_COUNT = (HP_RB_COUNT - HP_RF_STEP) >>> 2;
const REC_RB_LIMIT = (HP_RB_LIMIT - HP_RF_STEP) >>> 2;
const REC_RB_BLOCKS = (HP_RB_BLOCKS - HP_RF_STEP) >>> 2;

/** How long a resolver waits for a drain in progress before it calls a push unknowable. */
const SETTLE_MS = 200;
/** How long one `park` slice of a complete drain lasts. */
const WAIT_SLICE_MS = 50;

/** What a resolver learnt of a compare-and-swap its dead freer may have done. */
const NOT_DONE = 0;
const DONE = 1;
const UNKNOWN = 2;

/**
 * Frees `block`, validated, into `page`, which another thread owns (or nobody: abandoned):
 * into this thread's remote-free buffer when it holds blocks of `page` and has room, else
 * after a flush of the buffer, into an emptied buffer, or (secure mode, or blocks too large
 * to buffer: `bufferLimit`) at once, by `remoteFreeSteps`.
 *
 * A buffered block is linked to the entry before it, entered, counted, and only then marked
 * (atomically): whoever sees the marker sees the block in the buffer (the rebuild of a dead
 * owner's page leaves it to this thread), and a thread that dies before the count leaves
 * the block live, as if its free had not begun. Plain stores otherwise, in this thread's
 * own record: its resolver reads them after its death, `check()` once synchronized with it.
 * The `remoteFrees` event counts a buffered free when the buffer is pushed.
 */
export function freeRemote(t: MiContext, page: number, block: number): void {
  const u32 = t.u32;
  const rec = t.remoteRecord;
  const count = u32[rec + REC_RB_COUNT]!;
  if (count !== 0 && u32[rec + REC_RB_PAGE] === page && count < u32[rec + REC_RB_LIMIT]!) {
    u32[block >>> 2] = u32[rec + REC_RB_BLOCKS + count - 1]!;
    u32[rec + REC_RB_BLOCKS + count] = block;
    u32[rec + REC_RB_COUNT] = count + 1;
    reachStep(t, 'remote:buffered');
    markRemoteFree(t, block);
    return;
  }
  freeRemoteToNewBuffer(t, page, block);
}

/**
 * `freeRemote`'s rarer case, kept out of its path: the buffer flushed if it holds blocks,
 * then `block` freed at once, or as the first entry of the buffer, now `page`'s.
 */
function freeRemoteToNewBuffer(t: MiContext, page: number, block: number): void {
  const u32 = t.u32;
  const rec = t.remoteRecord;
  if (u32[rec + REC_RB_COUNT] !== 0) flushRemoteBuffer(t);
  const limit = t.secure ? 0 : bufferLimit(u32[(page + PG_BLOCK_SIZE) >>> 2]!);
  if (limit < 2) {
    u32[rec + REC_PAGE] = page;
    remoteFreeSteps(t, rec, page, block, block, true);
    addEvent(t, t.heap, HeapEvent.remoteFrees);
    return;
  }
  // The count last: it is what makes the entry part of the buffer.
  u32[rec + REC_RB_BLOCKS] = block;
  u32[rec + REC_RB_LIMIT] = limit;
  u32[rec + REC_RB_PAGE] = page;
  u32[rec + REC_RB_COUNT] = 1;
  reachStep(t, 'remote:buffered');
  markRemoteFree(t, block);
}

/** How many blocks of `blockSize` bytes a remote-free buffer takes (below 2: none). */
function bufferLimit(blockSize: number): number {
  return Math.min(RB_CAPACITY, Math.floor(RB_MAX_BYTES / blockSize));
}

/**
 * Pushes this thread's remote-free buffer, if it holds blocks, as one chain: its last entry
 * is the head, its first the tail. Its markers are written already.
 */
export function flushRemoteBuffer(t: MiContext): void {
  const u32 = t.u32;
  const rec = t.remoteRecord;
  const count = u32[rec + REC_RB_COUNT]!;
  if (count === 0) return;
  const page = u32[rec + REC_RB_PAGE]!;
  u32[rec + REC_PAGE] = page;
  remoteFreeSteps(t, rec, page, u32[rec + REC_RB_BLOCKS + count - 1]!, u32[rec + REC_RB_BLOCKS]!, false);
  addEvent(t, t.heap, HeapEvent.remoteFrees, count);
}

/**
 * The number of blocks of the chain a record naming `block` in `page` pushes: the count of
 * the buffer in the same heap record when the record names its last entry (the record is a
 * flush of it, invariant 13), else 0 (one block, on its own).
 */
function coveredCount(t: MiContext, rec: number, page: number, block: number): number {
  const u32 = t.u32;
  const count = u32[rec + REC_RB_COUNT]!;
  if (count === 0 || count > RB_CAPACITY || u32[rec + REC_RB_PAGE] !== page) return 0;
  return u32[rec + REC_RB_BLOCKS + count - 1] === block ? count : 0;
}

/**
 * Empties the buffer of the heap record at `rec` if the record's steps, naming `block` in
 * `page`, pushed it: after the compare-and-swap that put the chain on a list, before the
 * record is cleared, so a thread that dies between leaves a record that covers the buffer.
 */
function emptyCoveredBuffer(t: MiContext, rec: number, page: number, block: number): void {
  if (coveredCount(t, rec, page, block) === 0) return;
  t.u32[rec + REC_RB_COUNT] = 0;
  t.u32[rec + REC_RB_PAGE] = 0;
}

/**
 * Writes the freed marker of every block of the chain a resolver frees afresh (its freer
 * may have died before it wrote them): `block` alone, or the `count` entries of the buffer.
 */
function remarkChain(t: MiContext, rec: number, block: number, count: number): void {
  if (count === 0) {
    Atomics.store(t.i32, (block + BLOCK_MARKER) >>> 2, freedMarker(block, t.cookie));
    return;
  }
  for (let i = 0; i < count; i++) {
    const entry = t.u32[rec + REC_RB_BLOCKS + i]!;
    Atomics.store(t.i32, (entry + BLOCK_MARKER) >>> 2, freedMarker(entry, t.cookie));
  }
}

/**
 * Writes the freed marker of `block`, atomically and after a record or a buffer entry named
 * the block: whoever rebuilds a dead owner's page from its freed markers and then reads the
 * records and buffers sees the block's record or entry if it saw the marker.
 */
function markRemoteFree(t: MiContext, block: number): void {
  Atomics.store(t.i32, (block + BLOCK_MARKER) >>> 2, freedMarker(block, t.cookie));
  reachStep(t, 'remote:marked');
}

/**
 * The remote free from its first compare-and-swap on, writing the steps in the record at
 * word `rec` (this thread's own, or a dead freer's that this thread resolves), of the chain
 * from `block` to `tail` (linked already; `tail` is `block` for one block, a buffer's first
 * entry for its chain). With `mark` (a fresh free of one block) the block's marker is
 * written once its first step is named.
 *
 * Step 1, one compare-and-swap on thread_free: push the chain, or, when the page is full and
 * its owner wants to hear of it (`USE_DELAYED_FREE`), claim the delayed free by moving to
 * `DELAYED_FREEING`. Step 2, only for a claimed delayed free: push the chain on the owner
 * heap's delayed list, then set `NO_DELAYED_FREE` and notify the word (an owner draining
 * completely may be waiting on it). Every step is named in the record first.
 *
 * The first record names the first step itself (`RF_PUSHING` or `RF_CLAIMING`), and a fresh
 * free's marker follows it: the `RF_PUSHING` record and its clearing are plain stores (see
 * below for who reads them and why that is enough). A resolver of either code writes the
 * markers again before it frees the chain afresh.
 */
function remoteFreeSteps(t: MiContext, rec: number, page: number, block: number, tail: number, mark: boolean): void {
  const u32 = t.u32;
  const w = page >>> 2;
  const tfw = w + (PG_THREAD_FREE >>> 2);
  let unmarked = mark;
  // The first expected word is a plain read: the compare-and-swap checks it, and a retry
  // takes the word the compare-and-swap found. (An Atomics call costs about 10 ns here, and
  // this path makes three: the collects read, the marker and the CAS.)
  let word = u32[tfw]!;
  for (;;) {
    const state = word & DELAYED_MASK;
    if (state === USE_DELAYED_FREE) {
      Atomics.store(u32, rec, block + RF_CLAIMING);
      reachStep(t, 'remote:claiming');
      if (unmarked) {
        markRemoteFree(t, block);
        unmarked = false;
      }
      const found = Atomics.compareExchange(u32, tfw, word, word - state + DELAYED_FREEING);
      if (found !== word) {
        word = found;
        continue;
      }
      Atomics.store(u32, rec, block + RF_CLAIMED);
      reachStep(t, 'remote:claimed');
      deliverDelayed(t, rec, page, block, tail);
      return;
    }
    const head = word - state;
    u32[tail >>> 2] = t.secure ? encodeLink(head, u32[w + (PG_KEY0 >>> 2)]!, u32[w + (PG_KEY1 >>> 2)]!) : head;
    u32[rec + REC_SEQ] = Atomics.load(u32, w + (PG_COLLECTS >>> 2));
    // A plain store, where the claim's record above is atomic: whoever must see this one
    // sees it through a later atomic write of this thread. A rebuild of a dead owner's page
    // reads the block's marker atomically, and the marker is stored atomically after this
    // (or, on a retry or a resolver's fresh free, was stored after a record naming the same
    // block; for a buffer's chain, after the entries, which name the blocks until the CAS
    // is done); a resolver reads the record only once this thread is dead (its death, seen by
    // the reaper or the id's next thread, orders every store the thread made before it);
    // and `claimantOf`, the live owners' reader, ignores this code. An Atomics.store is a
    // locked exchange on x86, as costly as the compare-and-swap itself.
    u32[rec] = block + RF_PUSHING;
    reachStep(t, 'remote:pushing');
    if (unmarked) {
      markRemoteFree(t, block);
      unmarked = false;
    }
    const found = Atomics.compareExchange(u32, tfw, word, block + state);
    if (found === word) break;
    word = found;
  }
  reachStep(t, 'remote:pushed');
  // Cleared by a plain store too, for the same readers: a resolver (after this thread's
  // death, or after the resolver before it, whose release of `HP_RF_RESOLVER` publishes
  // this), `check()` (run once the threads are synchronized with), and a rebuild of a dead
  // owner's page. A rebuild may still find the record naming the block: it then finds the
  // block on thread_free too, unless the owner took it off before it died; an atomic store
  // would not order the clearing before such a rebuild either (nothing synchronizes the two
  // once the compare-and-swap is done: the owner's take synchronizes with the CAS, not with
  // what follows it), so the store's kind changes no case.
  emptyCoveredBuffer(t, rec, page, block);
  u32[rec] = 0;
}

/**
 * Step 2 of a claimed delayed free: the block (or the chain from it to `tail`) onto the
 * delayed list of the page's owner, then the claim lifted. The owner cannot abandon the page
 * while it is claimed (it waits, or resolves a dead claimer first), so the owner read here
 * is the heap that must get it.
 */
function deliverDelayed(t: MiContext, rec: number, page: number, block: number, tail: number): void {
  const u32 = t.u32;
  const owner = Atomics.load(u32, (page + PG_OWNER) >>> 2);
  if (owner === 0 || owner > t.maxThreads) {
    // Not reachable while claims are waited for; if the page has no owner anyway, the block
    // goes to thread_free and the page to the state of an abandoned one.
    releaseClaim(t, page, NEVER_DELAYED_FREE);
    remoteFreeSteps(t, rec, page, block, tail, false);
    Atomics.notify(t.i32, (page + PG_THREAD_FREE) >>> 2);
    return;
  }
  const heap = t.heapOf(owner);
  u32[rec + REC_HEAP] = heap;
  const dw = (heap + HP_DELAYED_FREE) >>> 2;
  for (;;) {
    const head = Atomics.load(u32, dw);
    u32[tail >>> 2] = t.secure ? encodeLink(head, u32[(heap + HP_DELAYED_KEY0) >>> 2]!, u32[(heap + HP_DELAYED_KEY1) >>> 2]!) : head;
    Atomics.store(u32, rec, block + RF_DELAYING);
    reachStep(t, 'remote:delaying');
    if (Atomics.compareExchange(u32, dw, head, block) === head) break;
  }
  Atomics.store(u32, rec, block + RF_DELAYED);
  reachStep(t, 'remote:delayed');
  releaseClaim(t, page, NO_DELAYED_FREE);
  reachStep(t, 'remote:released');
  emptyCoveredBuffer(t, rec, page, block);
  Atomics.store(u32, rec, 0);
  Atomics.notify(t.i32, (page + PG_THREAD_FREE) >>> 2);
}

/** Moves the page from `DELAYED_FREEING` to `to`, keeping thread_free; nothing otherwise. */
function releaseClaim(t: MiContext, page: number, to: number): void {
  const u32 = t.u32;
  const tfw = (page + PG_THREAD_FREE) >>> 2;
  for (;;) {
    const word = Atomics.load(u32, tfw);
    if ((word & DELAYED_MASK) !== DELAYED_FREEING) return;
    if (Atomics.compareExchange(u32, tfw, word, word - DELAYED_FREEING + to) === word) return;
  }
}

// --- liveness ----------------------------------------------------------------------------

/**
 * True while the thread holding id `threadId` is the one that wrote its heap record's
 * generation: a dead thread's slot is released (or being released) or claimed again.
 */
export function recordLive(t: MiContext, threadId: number): boolean {
  return t.threads.isActive(threadId) && t.threads.generation(threadId) === t.u32[(t.heapOf(threadId) + HP_GENERATION) >>> 2];
}

/** True while the resolver named by `word` (`HP_RF_RESOLVER`) is alive. */
function resolverLive(t: MiContext, word: number): boolean {
  const id = word & ((1 << RESOLVER_ID_BITS) - 1);
  return id >= 1 && id <= t.maxThreads && t.threads.isActive(id) && (t.threads.generation(id) & RESOLVER_GEN_MASK) === word >>> RESOLVER_ID_BITS;
}

// --- resolution --------------------------------------------------------------------------

/**
 * Finishes the remote free that thread `threadId` (dead, or its slot taken again) left in
 * its record, as invariants 9 to 12 say. Returns true when the record is clear afterwards,
 * false when another live thread is resolving it. Never waits but for a drain in progress
 * on the delayed list (`SETTLE_MS` at most).
 */
export function resolveRemoteFree(t: MiContext, threadId: number): boolean {
  const u32 = t.u32;
  const heap = t.heapOf(threadId);
  const rec = (heap + HP_RF_STEP) >>> 2;
  if (Atomics.load(u32, rec) === 0 && u32[rec + REC_RB_COUNT] === 0) return true;
  const resolverWord = (heap + HP_RF_RESOLVER) >>> 2;
  const me = (t.threadId | ((t.generation & RESOLVER_GEN_MASK) << RESOLVER_ID_BITS)) >>> 0;
  for (;;) {
    const word = Atomics.load(u32, resolverWord);
    if (word !== 0 && (word === me || resolverLive(t, word))) return false;
    if (Atomics.compareExchange(u32, resolverWord, word, me) === word) break;
  }
  try {
    resolveRecord(t, rec);
    flushDeadBuffer(t, rec);
  } finally {
    Atomics.compareExchange(u32, resolverWord, me, 0);
  }
  return true;
}

/**
 * Clears the record and the buffer of `threadId` without finishing them (a resolver that
 * never finished: `settleRecordOf`), counting their blocks lost.
 */
export function dropRemoteFree(t: MiContext, threadId: number): void {
  const u32 = t.u32;
  const rec = (t.heapOf(threadId) + HP_RF_STEP) >>> 2;
  const word = Atomics.load(u32, rec);
  const count = Math.min(u32[rec + REC_RB_COUNT]!, RB_CAPACITY);
  const covered = word === 0 ? 0 : coveredCount(t, rec, u32[rec + REC_PAGE]!, word - (word & RF_CODE_MASK));
  t.reportLoss(0, (word !== 0 && covered === 0 ? 1 : 0) + count);
  u32[rec + REC_RB_COUNT] = 0;
  u32[rec + REC_RB_PAGE] = 0;
  Atomics.store(u32, rec, 0);
}

/** The resolution itself; this thread is the record's resolver. */
function resolveRecord(t: MiContext, rec: number): void {
  const u32 = t.u32;
  const word = Atomics.load(u32, rec);
  if (word === 0) return;
  const code = word & RF_CODE_MASK;
  const block = word - code;
  const page = u32[rec + REC_PAGE]!;
  if (!isBlockOfPage(t, page, block)) {
    // The page changed shape: the block was freed and its page given back, so the free is
    // done; or the record was overwritten. Nothing to finish either way.
    emptyCoveredBuffer(t, rec, page, block);
    Atomics.store(u32, rec, 0);
    return;
  }
  // A flush of the buffer pushes its whole chain (invariant 13): its tail is entry 0.
  const chain = coveredCount(t, rec, page, block);
  const tail = chain === 0 ? block : u32[rec + REC_RB_BLOCKS]!;
  const blocks = Math.max(chain, 1);
  const blockSize = u32[(page + PG_BLOCK_SIZE) >>> 2]!;
  switch (code) {
    case RF_PUSHING: {
      const pushed = pushedOnThreadFree(t, page, block, u32[rec + REC_SEQ]!);
      if (pushed === NOT_DONE) {
        // The freer may have died before its marker: written again, then freed afresh.
        remarkChain(t, rec, block, chain);
        remoteFreeSteps(t, rec, page, block, tail, false);
        return;
      }
      if (pushed === UNKNOWN) t.reportLoss(blockSize * blocks, blocks);
      emptyCoveredBuffer(t, rec, page, block);
      Atomics.store(u32, rec, 0);
      return;
    }
    case RF_CLAIMING:
      // Whether or not the claim happened, the block is on no list: free it afresh (it goes
      // to thread_free if the page is claimed), with its marker, which the freer may not
      // have written yet. A claim the dead freer did take is then held by nobody, and is
      // lifted.
      remarkChain(t, rec, block, chain);
      remoteFreeSteps(t, rec, page, block, tail, false);
      liftOrphanClaim(t, page);
      return;
    case RF_CLAIMED:
      deliverDelayed(t, rec, page, block, tail);
      return;
    case RF_DELAYING: {
      const pushed = delayedPushDone(t, u32[rec + REC_HEAP]!, block);
      if (pushed === NOT_DONE) {
        deliverDelayed(t, rec, page, block, tail);
        return;
      }
      if (pushed === UNKNOWN) t.reportLoss(blockSize * blocks, blocks);
      // Unknown: if the block never reached the owner, USE_DELAYED_FREE makes the next
      // remote free tell it of the page.
      releaseClaim(t, page, pushed === DONE ? NO_DELAYED_FREE : USE_DELAYED_FREE);
      emptyCoveredBuffer(t, rec, page, block);
      Atomics.store(u32, rec, 0);
      Atomics.notify(t.i32, (page + PG_THREAD_FREE) >>> 2);
      return;
    }
    case RF_DELAYED:
      releaseClaim(t, page, NO_DELAYED_FREE);
      emptyCoveredBuffer(t, rec, page, block);
      Atomics.store(u32, rec, 0);
      Atomics.notify(t.i32, (page + PG_THREAD_FREE) >>> 2);
      return;
    default:
      throw heapCorrupted(BACKEND_NAME, `a remote-free record names step ${code} for the block at ${hex(block)}`);
  }
}

/**
 * Flushes the remote-free buffer of a dead thread's heap record at `rec`, its record being
 * clear (invariant 14): every entry a block of the buffer's page, each marker written again
 * (the thread may have died before its last), then the chain pushed with the record's steps.
 * @throws AllocError `HeapCorrupted` for a buffer whose count or entries no path writes
 */
function flushDeadBuffer(t: MiContext, rec: number): void {
  const u32 = t.u32;
  const count = u32[rec + REC_RB_COUNT]!;
  if (count === 0) return;
  const page = u32[rec + REC_RB_PAGE]!;
  if (count > RB_CAPACITY) throw heapCorrupted(BACKEND_NAME, `a remote-free buffer counts ${count} blocks, more than its ${RB_CAPACITY}`);
  for (let i = 0; i < count; i++) {
    const entry = u32[rec + REC_RB_BLOCKS + i]!;
    if (!isBlockOfPage(t, page, entry)) {
      throw heapCorrupted(BACKEND_NAME, `a remote-free buffer of the page at ${hex(page)} holds ${hex(entry)}, not one of its blocks`);
    }
  }
  const head = u32[rec + REC_RB_BLOCKS + count - 1]!;
  remarkChain(t, rec, head, count);
  u32[rec + REC_PAGE] = page;
  remoteFreeSteps(t, rec, page, head, u32[rec + REC_RB_BLOCKS]!, false);
}

/** Whether `block` is an extended block of `page`, a page in use of a paged segment. */
function isBlockOfPage(t: MiContext, page: number, block: number): boolean {
  const u32 = t.u32;
  const map = t.mapOf(page);
  const kind = map & MAP_KIND_MASK;
  if (kind === 0 || kind > SEGMENT_PAGED_MAX || t.mapOf(block) !== map) return false;
  const offset = block & SEGMENT_MASK;
  if (block - offset + SG_PAGES + ((offset >>> (map >>> MAP_SHIFT_BITS)) << PAGE_DESCRIPTOR_SHIFT) !== page) return false;
  const w = page >>> 2;
  if ((u32[w + (PG_FLAGS >>> 2)]! & PAGE_IN_USE) === 0) return false;
  const blockSize = u32[w + (PG_BLOCK_SIZE >>> 2)]!;
  const at = block - u32[w + (PG_START >>> 2)]!;
  return blockSize !== 0 && at >= 0 && at < u32[w + (PG_CAPACITY >>> 2)]! * blockSize && at % blockSize === 0;
}

/**
 * Whether a dead freer's push of `block` on the page's thread_free happened (invariant 11):
 * DONE when the block is on the list, NOT_DONE when it is not and no take of the list began
 * since the freer read `PG_COLLECTS` (`seq`), else UNKNOWN.
 */
function pushedOnThreadFree(t: MiContext, page: number, block: number, seq: number): number {
  const u32 = t.u32;
  const collects = (page + PG_COLLECTS) >>> 2;
  const before = Atomics.load(u32, collects);
  const word = Atomics.load(u32, (page + PG_THREAD_FREE) >>> 2);
  if (pageListHas(t, page, word - (word & DELAYED_MASK), block)) return DONE;
  const after = Atomics.load(u32, collects);
  return before === after && before === seq && (before & 1) === 0 ? NOT_DONE : UNKNOWN;
}

/**
 * Whether a dead claimer's push of `block` on the delayed list of the heap at `heap`
 * happened (invariant 11): the list walked while no drain holds blocks from it.
 */
function delayedPushDone(t: MiContext, heap: number, block: number): number {
  const u32 = t.u32;
  const drains = (heap + HP_DRAINS) >>> 2;
  const deadline = performance.now() + SETTLE_MS;
  for (;;) {
    const before = Atomics.load(u32, drains);
    if ((before & 1) === 0) {
      if (delayedListHolds(t, heap, block)) return DONE;
      if (Atomics.load(u32, drains) === before) return NOT_DONE;
    }
    if (performance.now() > deadline) return UNKNOWN;
    park(t.i32, drains, before | 0, 1);
  }
}

/** The id of a thread whose record claims (or may have claimed) `page`, or 0. */
function claimantOf(t: MiContext, page: number): number {
  const u32 = t.u32;
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const rec = (t.heapOf(threadId) + HP_RF_STEP) >>> 2;
    const code = Atomics.load(u32, rec) & RF_CODE_MASK;
    if (code >= RF_CLAIMING && code <= RF_DELAYED && u32[rec + REC_PAGE] === page) return threadId;
  }
  return 0;
}

/**
 * Lifts a claim nobody holds (invariant 10): a page in `DELAYED_FREEING` that no record
 * names goes to `USE_DELAYED_FREE`. Returns whether it did.
 */
function liftOrphanClaim(t: MiContext, page: number): boolean {
  const tfw = (page + PG_THREAD_FREE) >>> 2;
  if ((Atomics.load(t.u32, tfw) & DELAYED_MASK) !== DELAYED_FREEING || claimantOf(t, page) !== 0) return false;
  releaseClaim(t, page, USE_DELAYED_FREE);
  Atomics.notify(t.i32, tfw);
  return true;
}

/**
 * Makes progress on a page found in `DELAYED_FREEING` without waiting: resolves the records
 * of dead threads that claim it, and lifts a claim nobody holds. Returns true when it
 * changed something; false when only live threads claim it (or resolve its claimer).
 */
export function settleClaim(t: MiContext, page: number): boolean {
  const u32 = t.u32;
  let progressed = false;
  let live = false;
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const rec = (t.heapOf(threadId) + HP_RF_STEP) >>> 2;
    const code = Atomics.load(u32, rec) & RF_CODE_MASK;
    if (code < RF_CLAIMING || code > RF_DELAYED || u32[rec + REC_PAGE] !== page) continue;
    if (recordLive(t, threadId) || !resolveRemoteFree(t, threadId)) live = true;
    else progressed = true;
  }
  return progressed || (!live && liftOrphanClaim(t, page));
}

/**
 * Waits until the page is out of `DELAYED_FREEING`, resolving dead claimers meanwhile; for
 * complete drains (abandon and detach), which must not leave a block behind.
 * @throws AllocError `LockTimeout` at `deadline` (a live claimer never finished: a thread
 *   that died without being reaped looks alive)
 */
export function awaitClaim(t: MiContext, page: number, deadline: number): void {
  const tfw = (page + PG_THREAD_FREE) >>> 2;
  for (;;) {
    const word = Atomics.load(t.u32, tfw);
    if ((word & DELAYED_MASK) !== DELAYED_FREEING) return;
    if (settleClaim(t, page)) continue;
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new AllocError(
        'LockTimeout',
        `mimalloc: a remote free into the page at ${hex(page)} stayed between its two steps until the drain's ` +
          'deadline (its thread is stalled, or died and was not reaped: watchWorker or releaseThreadsOf repairs it)',
      );
    }
    park(t.i32, tfw, word | 0, Math.min(left, WAIT_SLICE_MS));
  }
}
