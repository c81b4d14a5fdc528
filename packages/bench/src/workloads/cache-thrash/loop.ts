/**
 * The cache-thrash loop (docs/workloads/cache-thrash.md), Hoard's test of active false
 * sharing: each thread, on its own, allocates a tiny object, writes it over and over, and
 * frees it. An allocator that gives two threads neighbouring bytes of one cache line makes
 * every one of those writes bounce the line between the cores.
 *
 * A round is one object's life: `malloc`, `THRASH_REPETITIONS` passes that each store every
 * byte and read it back, `free`. The loop counts rounds.
 */

import type { AddressAllocator, LoopLimits } from '../../run/address-allocator.js';
import type { ThreadOutcome, ThreadParams } from '../../run/thread-loop.js';

/** Bytes of each object: mimalloc-bench passes 1. */
export const THRASH_OBJECT_SIZE = 1;

/**
 * Write passes over the object per round. mimalloc-bench passes 2,000,000 and the program
 * splits them among its threads; heaplab runs each thread's rounds for a time, not a fixed
 * total, so every thread's round has the same passes, a hundredth of the original's (see
 * the docs page for why).
 */
export const THRASH_REPETITIONS = 20_000;

/**
 * The byte thread `threadIndex` writes: a different one per thread (up to 255 threads), so
 * that a block handed to two threads at once shows as a byte read back wrong.
 */
export function thrashFillByte(threadIndex: number): number {
  return (threadIndex % 255) + 1;
}

/**
 * Runs rounds until a limit. The stop flag and the clock are read once per round: a round is
 * tens of thousands of stores, against which a clock read costs nothing.
 * @throws Error when `malloc` returns 0, or in verify mode when a byte read back is not the
 *   byte just written (another thread writes the same block)
 */
export function runThrashLoop(allocator: AddressAllocator, u8: Uint8Array, limits: LoopLimits, thread: ThreadParams): ThreadOutcome {
  const { stop, deadline, maxIterations } = limits;
  const fill = thrashFillByte(thread.threadIndex);
  let rounds = 0;
  let highWater = 0;
  const started = performance.now();
  while (rounds < maxIterations && Atomics.load(stop, 0) === 0 && performance.now() < deadline) {
    const address = allocator.malloc(THRASH_OBJECT_SIZE);
    if (address === 0) throw new Error(`malloc(${THRASH_OBJECT_SIZE}) returned 0 after ${rounds} rounds: the heap is full`);
    const wrong = writeRepeatedly(u8, address, THRASH_OBJECT_SIZE, THRASH_REPETITIONS, fill);
    if (thread.verify && wrong !== 0) failVerify(u8, address, fill, wrong, thread.threadIndex);
    allocator.free(address);
    if (address + THRASH_OBJECT_SIZE > highWater) highWater = address + THRASH_OBJECT_SIZE;
    rounds++;
  }
  return { iterations: rounds, seconds: (performance.now() - started) / 1000, highWater };
}

/**
 * `repetitions` passes over the `size` bytes at `address`, each storing `fill` into a byte
 * and reading it back, as the original's inner loop does. The reads are counted when they
 * differ from `fill`, which gives them a use the compiler cannot drop and gives verify mode
 * its test.
 * @returns how many reads did not see `fill`
 */
export function writeRepeatedly(u8: Uint8Array, address: number, size: number, repetitions: number, fill: number): number {
  const end = address + size;
  let wrong = 0;
  for (let pass = 0; pass < repetitions; pass++) {
    for (let at = address; at < end; at++) {
      u8[at] = fill;
      if (u8[at] !== fill) wrong++;
    }
  }
  return wrong;
}

function failVerify(u8: Uint8Array, address: number, fill: number, wrong: number, threadIndex: number): never {
  throw new Error(
    `verify: thread ${threadIndex + 1} read back ${wrong} byte(s) of its object at 0x${address.toString(16)} not as written ` +
      `(now ${u8[address]}, expected ${fill}): another thread writes the same block`,
  );
}
