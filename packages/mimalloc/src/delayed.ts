/**
 * The delayed-free protocol (mimalloc's `_mi_page_use_delayed_free` and
 * `_mi_heap_delayed_free`): how the owner changes a page's delayed state, and how it drains
 * its heap's `thread_delayed_free` list. The states and the thread_free encoding are in
 * `types.ts`; the producer's side is `freeRemote` in `remote.ts`.
 *
 * The owner never spins without bound on a producer. A producer in `DELAYED_FREEING` is
 * between its two steps and may be descheduled there for any time, or dead; spinning on it
 * (as mimalloc once did with a yield) can livelock a single core. So:
 * - the periodic drain (`delayedFreePartial`), and a forced collect, make a few attempts
 *   per block and leave a contended block on the list for a later drain, after resolving
 *   the claim if its claimer is dead;
 * - only a drain that must be complete (`setDelayedComplete` and `delayedFreeAll`, for
 *   detach and abandon) waits, on the page's thread_free word, which the producer notifies
 *   when it leaves `DELAYED_FREEING`; meanwhile it resolves a claimer that died
 *   (`awaitClaim`), and it gives up after `DRAIN_TIMEOUT_MS`. It never waits holding
 *   blocks it took off the list.
 *
 * A drain bumps `HP_DRAINS` before it takes the list and after the last block it took is
 * freed or back on the list, so a resolver can tell a walk of the list saw every block.
 */

import { AllocError, hex } from '@heaplab/core/backend';

import { DRAIN_TIMEOUT_MS, type MiContext, reachStep } from './context.js';
import { addEvent } from './events.js';
import { freeLocalTo } from './free.js';
import { pageCollect, pageIndexOf, pageDescriptor } from './page.js';
import { awaitClaim, settleClaim } from './remote.js';
import { decodeLink, encodeLink, freedMarker } from './secure.js';
import {
  BLOCK_ALIGN,
  DELAYED_FREEING,
  DELAYED_MASK,
  HeapEvent,
  HP_DELAYED_FREE,
  HP_DELAYED_KEY0,
  HP_DELAYED_KEY1,
  HP_DRAINS,
  MAP_KIND_MASK,
  MAP_SHIFT_BITS,
  NEVER_DELAYED_FREE,
  NO_DELAYED_FREE,
  PG_BLOCK_SIZE,
  PG_CAPACITY,
  PG_START,
  PG_THREAD_FREE,
  SEGMENT_MASK,
  SEGMENT_PAGED_MAX,
} from './types.js';

/** Attempts a drain makes at switching a contended page back before it defers the block. */
const DRAIN_TRIES = 4;

/**
 * Tries to put the page's delayed state to `delay`, keeping its thread_free list. Succeeds
 * at once unless a producer is in `DELAYED_FREEING`: then it re-reads at most `tries` times
 * and gives up (returns false). A `NEVER_DELAYED_FREE` page keeps its state unless
 * `override`. A failed compare-and-swap means another thread pushed a block, so retrying it
 * is lock-free progress, not waiting.
 */
export function trySetDelayed(t: MiContext, page: number, delay: number, override: boolean, tries: number): boolean {
  const u32 = t.u32;
  const tfw = (page + PG_THREAD_FREE) >>> 2;
  let left = tries;
  for (;;) {
    const word = Atomics.load(u32, tfw);
    const state = word & DELAYED_MASK;
    if (state === DELAYED_FREEING) {
      if (left-- <= 0) return false;
      continue;
    }
    if (state === delay || (state === NEVER_DELAYED_FREE && !override)) return true;
    if (Atomics.compareExchange(u32, tfw, word, word - state + delay) === word) return true;
  }
}

/**
 * Puts the page's delayed state to `delay` however long a live producer takes to leave
 * `DELAYED_FREEING` (a dead one's free is finished: `awaitClaim`).
 * @throws AllocError `LockTimeout` when a producer stays in `DELAYED_FREEING` for
 *   `DRAIN_TIMEOUT_MS`
 */
export function setDelayedComplete(t: MiContext, page: number, delay: number, override: boolean): void {
  if (trySetDelayed(t, page, delay, override, 8)) return;
  const deadline = performance.now() + DRAIN_TIMEOUT_MS;
  for (;;) {
    awaitClaim(t, page, deadline);
    if (trySetDelayed(t, page, delay, override, 0)) return;
  }
}

/**
 * Pushes `block` onto the delayed list of the heap record at `heap` (any thread). In secure
 * mode the link is encoded with that heap's keys.
 */
export function pushDelayed(t: MiContext, heap: number, block: number): void {
  const u32 = t.u32;
  const dw = (heap + HP_DELAYED_FREE) >>> 2;
  for (;;) {
    const head = Atomics.load(u32, dw);
    u32[block >>> 2] = t.secure ? encodeLink(head, u32[(heap + HP_DELAYED_KEY0) >>> 2]!, u32[(heap + HP_DELAYED_KEY1) >>> 2]!) : head;
    if (Atomics.compareExchange(u32, dw, head, block) === head) return;
  }
}

/**
 * The next block after `block` on the delayed list of the heap at `heap`. The link (decoded
 * in secure mode) must lead to a freed block of a paged segment, or end the list: a write
 * after free into a delayed block's link is reported, never followed.
 * @throws AllocError `HeapCorrupted` for a link that does not
 */
export function delayedNext(t: MiContext, heap: number, block: number): number {
  const u32 = t.u32;
  const link = u32[block >>> 2]!;
  const next = t.secure ? decodeLink(link, u32[(heap + HP_DELAYED_KEY0) >>> 2]!, u32[(heap + HP_DELAYED_KEY1) >>> 2]!) : link;
  if (next !== 0 && !isFreedBlock(t, next)) {
    throw new AllocError(
      'HeapCorrupted',
      `mimalloc: the delayed-free list of the heap at ${hex(heap)} is corrupted: the block at ${hex(block)} ` +
        `links to ${hex(next)}, which is no freed block (a write after free?)`,
    );
  }
  return next;
}

/**
 * Checks a delayed list taken off a heap before a drain frees its blocks: every link leads
 * to a freed block (`delayedNext`) and the list ends. A cycle is found as Brent's method
 * does (a marker block moves to the walker at each power of two of steps), within twice
 * its length; freeing a block twice would corrupt its page.
 * @throws AllocError `HeapCorrupted` for a bad link or a cycle
 */
function checkTakenList(t: MiContext, heap: number, head: number): void {
  let at = head;
  let marker = head;
  for (let steps = 1, power = 1; at !== 0; steps++) {
    at = delayedNext(t, heap, at);
    if (at === marker && at !== 0) {
      throw new AllocError('HeapCorrupted', `mimalloc: the delayed-free list of the heap at ${hex(heap)} has a cycle through ${hex(at)}`);
    }
    if (steps === power) {
      marker = at;
      power *= 2;
      steps = 0;
    }
  }
}

/**
 * Blocks and bytes on the delayed list of the heap at `heap`, for figures: a walk that never
 * throws, stops at a link that is no freed block of a paged segment, and stops at a cycle
 * (Brent's method, as `delayedListHas`), so a list drained meanwhile or corrupted costs a
 * bounded walk and a wrong figure.
 */
export function delayedListTotals(t: MiContext, heap: number): { blocks: number; bytes: number } {
  const u32 = t.u32;
  let blocks = 0;
  let bytes = 0;
  let at = Atomics.load(u32, (heap + HP_DELAYED_FREE) >>> 2);
  let marker = at;
  for (let steps = 1, power = 1; at !== 0 && isFreedBlock(t, at); steps++) {
    blocks++;
    bytes += u32[(pageOfBlock(t, at) + PG_BLOCK_SIZE) >>> 2]!;
    const link = u32[at >>> 2]!;
    at = t.secure ? decodeLink(link, u32[(heap + HP_DELAYED_KEY0) >>> 2]!, u32[(heap + HP_DELAYED_KEY1) >>> 2]!) : link;
    if (at === marker) break;
    if (steps === power) {
      marker = at;
      power *= 2;
      steps = 0;
    }
  }
  return { blocks, bytes };
}

/** Whether `address` starts an extended block of a page in use that carries its freed marker. */
function isFreedBlock(t: MiContext, address: number): boolean {
  const kind = t.mapOf(address) & MAP_KIND_MASK;
  if (kind === 0 || kind > SEGMENT_PAGED_MAX || (address & (BLOCK_ALIGN - 1)) !== 0) return false;
  const u32 = t.u32;
  const w = pageOfBlock(t, address) >>> 2;
  const blockSize = u32[w + (PG_BLOCK_SIZE >>> 2)]!;
  const at = address - u32[w + (PG_START >>> 2)]!;
  return (
    at >= 0 &&
    at < u32[w + (PG_CAPACITY >>> 2)]! * blockSize &&
    at % blockSize === 0 &&
    t.i32[(address + 4) >>> 2] === freedMarker(address, t.cookie)
  );
}

/** The descriptor of the page holding `block` (a block of a paged segment). */
function pageOfBlock(t: MiContext, block: number): number {
  const map = t.mapOf(block);
  return pageDescriptor(block - (block & SEGMENT_MASK), pageIndexOf(block, map >>> MAP_SHIFT_BITS));
}

/**
 * One pass over the heap's delayed list (mimalloc's `_mi_heap_delayed_free_partial`): takes
 * the whole list and frees each block into its page after switching the page back to
 * `NO_DELAYED_FREE`; a block whose page another producer has claimed goes back on the list.
 * Returns the page of the first block left behind, or 0. Never waits.
 */
function delayedFreePass(t: MiContext, heap: number): number {
  const u32 = t.u32;
  const dw = (heap + HP_DELAYED_FREE) >>> 2;
  if (u32[dw] === 0) return 0;
  const drains = (heap + HP_DRAINS) >>> 2;
  let deferred = 0;
  Atomics.add(u32, drains, 1);
  try {
    let block = Atomics.exchange(u32, dw, 0);
    reachStep(t, 'drain:taken');
    checkTakenList(t, heap, block);
    while (block !== 0) {
      const next = delayedNext(t, heap, block);
      const page = pageOfBlock(t, block);
      if (trySetDelayed(t, page, NO_DELAYED_FREE, false, DRAIN_TRIES)) {
        pageCollect(t, heap, page);
        freeLocalTo(t, heap, page, block);
        addEvent(t, heap, HeapEvent.delayedFreed);
      } else {
        pushDelayed(t, heap, block);
        addEvent(t, heap, HeapEvent.delayedDeferred);
        if (deferred === 0) deferred = page;
      }
      block = next;
    }
  } finally {
    Atomics.add(u32, drains, 1);
  }
  return deferred;
}

/**
 * The periodic drain: one pass, and a block left behind has its claim settled if its
 * claimer died (it is freed by a later drain). Returns true when nothing was left behind.
 * Never waits.
 */
export function delayedFreePartial(t: MiContext, heap: number): boolean {
  const deferred = delayedFreePass(t, heap);
  if (deferred !== 0) settleClaim(t, deferred);
  return deferred === 0;
}

/**
 * The complete drain (for detach and abandon): passes until the list is empty, waiting
 * between passes for a page that a producer has claimed. Blocks that arrive while it runs
 * are drained too.
 * @throws AllocError `LockTimeout` as `setDelayedComplete`
 */
export function delayedFreeAll(t: MiContext, heap: number): void {
  const deadline = performance.now() + DRAIN_TIMEOUT_MS;
  for (;;) {
    const deferred = delayedFreePass(t, heap);
    if (deferred !== 0) awaitClaim(t, deferred, deadline);
    else if (Atomics.load(t.u32, (heap + HP_DELAYED_FREE) >>> 2) === 0) return;
  }
}

/**
 * Whether the delayed list of the heap at `heap` holds `block`: a walk that never throws,
 * stops at a link that is no freed block, and at a cycle (for resolvers).
 */
export function delayedListHolds(t: MiContext, heap: number, block: number): boolean {
  const u32 = t.u32;
  let at = Atomics.load(u32, (heap + HP_DELAYED_FREE) >>> 2);
  let marker = at;
  for (let steps = 1, power = 1; at !== 0 && isFreedBlock(t, at); steps++) {
    if (at === block) return true;
    const link = u32[at >>> 2]!;
    at = t.secure ? decodeLink(link, u32[(heap + HP_DELAYED_KEY0) >>> 2]!, u32[(heap + HP_DELAYED_KEY1) >>> 2]!) : link;
    if (at === marker) return false;
    if (steps === power) {
      marker = at;
      power *= 2;
      steps = 0;
    }
  }
  return false;
}
