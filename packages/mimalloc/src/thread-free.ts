/**
 * The thread_free word of a page (`PG_THREAD_FREE`): the head of the list other threads push
 * onto, with the delayed-free state in its low two bits. The states, their transitions and
 * who may make each are drawn in `layout.ts` ("thread_free and the delayed-free states");
 * this is the one operation every layer makes on the state: the owner moving it.
 */

import type { MiContext } from './context.js';
import { DELAYED_FREEING, DELAYED_MASK, NEVER_DELAYED_FREE, PG_THREAD_FREE } from './layout.js';

/** Bounded attempts at a delayed-state change that finds a producer mid-way. */
export const DELAYED_TRIES = 4;

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
