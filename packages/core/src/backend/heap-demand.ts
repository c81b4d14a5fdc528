/**
 * The smallest heap a backend can work in, for what its threads ask. A backend whose threads
 * share one arena (every locked backend) works in the smallest heap; one whose threads own
 * parts of it says what they own (`BackendDescriptor.heapBytesNeeded`).
 */

import { AllocError } from '../errors.js';
import { alignUp, HEAP_ALIGN } from '../sizes.js';
import type { BackendDescriptor, HeapDemand } from './contract.js';
import { arenaCountOf } from './options.js';

/**
 * The smallest heap size (a multiple of `HEAP_ALIGN`) in which `descriptor`'s backend can
 * serve `demand`: its own `heapBytesNeeded`, rounded up, or `HEAP_ALIGN` without one; with
 * (normalised) `options` that give a locked backend several arenas, `HEAP_ALIGN` per arena
 * at least.
 * @throws AllocError `InvalidParam` for a demand that is not a positive thread count and a
 *   non-negative block size
 */
// biome-ignore lint/suspicious/noExplicitAny: any descriptor, whatever its options type
export function minimumHeapBytes(descriptor: BackendDescriptor<any, any>, demand: HeapDemand, options?: unknown): number {
  const { threads, largestBlock } = demand;
  if (!Number.isSafeInteger(threads) || threads < 1 || !Number.isSafeInteger(largestBlock) || largestBlock < 0) {
    throw new AllocError('InvalidParam', `a heap demand is a positive thread count and a block size; got ${threads} threads, ${largestBlock} bytes`);
  }
  const arenas = options === undefined ? 1 : arenaCountOf(descriptor, options);
  return Math.max(arenas * HEAP_ALIGN, alignUp(descriptor.heapBytesNeeded?.(demand) ?? 0, HEAP_ALIGN));
}
