/**
 * The alloc-pairs loop: each thread keeps `PAIRS_LIVE_BLOCKS` blocks; a pair frees a random
 * one of them and allocates a new block of a random size in [16, 512] in its place. The draws
 * are seeded per thread, so every run of a backend does the same work. A pair counts as one
 * of the thread's iterations; no footprint is tracked (`highWater` is 0).
 */

import { Random } from '@heaplab/core';

import type { AddressAllocator, LoopLimits } from '../../run/address-allocator.js';
import type { ThreadOutcome } from '../../run/thread-loop.js';

/** Blocks each thread holds. */
export const PAIRS_LIVE_BLOCKS = 1000;
/** Sizes are uniform in [PAIRS_MIN_SIZE, PAIRS_MAX_SIZE]. */
export const PAIRS_MIN_SIZE = 16;
export const PAIRS_MAX_SIZE = 512;
const STOP_CHECK_INTERVAL = 64;

/**
 * Fills the live set, times pairs until a limit, then frees every block (untimed) unless
 * `leaveLive` (see `ThreadParams.leaveLive`).
 * @throws Error when `malloc` returns 0
 */
export function runPairsLoop(allocator: AddressAllocator, limits: LoopLimits, seed: number, leaveLive = false): ThreadOutcome {
  const random = new Random(seed);
  const live = new Float64Array(PAIRS_LIVE_BLOCKS);
  for (let i = 0; i < PAIRS_LIVE_BLOCKS; i++) live[i] = mallocOrThrow(allocator, random.int(PAIRS_MIN_SIZE, PAIRS_MAX_SIZE + 1));
  const { stop, deadline, maxIterations } = limits;
  let pairs = 0;
  const started = performance.now();
  while (pairs < maxIterations) {
    if (pairs % STOP_CHECK_INTERVAL === 0 && (Atomics.load(stop, 0) !== 0 || performance.now() >= deadline)) break;
    const slot = random.int(0, PAIRS_LIVE_BLOCKS);
    allocator.free(live[slot]!);
    live[slot] = mallocOrThrow(allocator, random.int(PAIRS_MIN_SIZE, PAIRS_MAX_SIZE + 1));
    pairs++;
  }
  const seconds = (performance.now() - started) / 1000;
  if (!leaveLive) for (let i = 0; i < PAIRS_LIVE_BLOCKS; i++) allocator.free(live[i]!);
  return { iterations: pairs, seconds, highWater: 0 };
}

function mallocOrThrow(allocator: AddressAllocator, size: number): number {
  const address = allocator.malloc(size);
  if (address === 0) throw new Error(`malloc(${size}) returned 0: the heap is full`);
  return address;
}

/**
 * The `system` baseline's pairs loop: `new Uint8Array(n)` per allocation, and a block is
 * freed by dropping its reference, for V8's garbage collector. The same draws as
 * `runPairsLoop`, so the same sizes are requested.
 */
export function runSystemPairsLoop(limits: LoopLimits, seed: number): ThreadOutcome {
  const random = new Random(seed);
  const live: Uint8Array[] = [];
  for (let i = 0; i < PAIRS_LIVE_BLOCKS; i++) live.push(new Uint8Array(random.int(PAIRS_MIN_SIZE, PAIRS_MAX_SIZE + 1)));
  const { stop, deadline, maxIterations } = limits;
  let pairs = 0;
  const started = performance.now();
  while (pairs < maxIterations) {
    if (pairs % STOP_CHECK_INTERVAL === 0 && (Atomics.load(stop, 0) !== 0 || performance.now() >= deadline)) break;
    const slot = random.int(0, PAIRS_LIVE_BLOCKS);
    live[slot] = new Uint8Array(random.int(PAIRS_MIN_SIZE, PAIRS_MAX_SIZE + 1));
    pairs++;
  }
  return { iterations: pairs, seconds: (performance.now() - started) / 1000, highWater: 0 };
}
