/**
 * Slow-path event counters of a heap (`HP_EVENTS`, named by `HeapEvent`): written only by
 * the heap's owner with plain writes, read by stats. Never on the per-block fast path.
 */

import type { MiContext } from './context.js';
import { HP_EVENTS } from './types.js';

/** Adds `count` (default 1) to event `event` of the heap record at `heap`. */
export function addEvent(t: MiContext, heap: number, event: number, count = 1): void {
  const index = ((heap + HP_EVENTS) >>> 2) + event;
  t.u32[index] = t.u32[index]! + count;
}
