/**
 * The delayed-free protocol (mimalloc's `_mi_page_use_delayed_free` and
 * `_mi_heap_delayed_free`): how the owner changes a page's delayed state, and how it drains
 * its heap's `thread_delayed_free` list. The states and the thread_free encoding are in
 * `layout.ts`; the producer's side is `freeRemote` in `remote.ts`.
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

import { heapCorrupted, hex } from '@heaplab/core/backend';

import { DRAIN_TIMEOUT_MS, type MiContext, reachStep } from './context.js';
import { delayedNext, pushDelayed } from './delayed-list.js';
import { freeLocalTo } from './free.js';
import { addEvent, pageOfBlock } from './internal.js';
import { BACKEND_NAME, HeapEvent, HP_DELAYED_FREE, HP_DRAINS, NO_DELAYED_FREE } from './layout.js';
import { pageCollect } from './page.js';
import { awaitClaim, settleClaim } from './remote.js';
import { trySetDelayed } from './thread-free.js';

/** Attempts a drain makes at switching a contended page back before it defers the block. */
const DRAIN_TRIES = 4;

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
      throw heapCorrupted(BACKEND_NAME, `the delayed-free list of the heap at ${hex(heap)} has a cycle through ${hex(at)}`);
    }
    if (steps === power) {
      marker = at;
      power *= 2;
      steps = 0;
    }
  }
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
