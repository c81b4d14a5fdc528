/**
 * The cache-scratch loop (docs/workloads/cache-scratch.md), Hoard's test of passive false
 * sharing. Before anything is timed, thread 0 allocates one tiny object per thread (so the
 * objects are neighbours, most likely in one cache line) and hands each thread its own; each
 * thread frees the object it was given, which for every thread but 0 is a remote free, and
 * then runs rounds of `malloc`, many writes, `free`. An allocator that gives a freed block
 * back to the thread that freed it hands the threads neighbouring bytes of one line, and
 * their writes then fight over it.
 *
 * The round is cache-thrash's; this folder keeps its own copy so that each workload stands
 * alone.
 */

import type { AddressAllocator, LoopLimits } from '../../run/address-allocator.js';
import type { ThreadOutcome, ThreadParams } from '../../run/thread-loop.js';

/** Bytes of each object: mimalloc-bench passes 1. */
export const SCRATCH_OBJECT_SIZE = 1;

/**
 * Write passes over the object per round: a hundredth of mimalloc-bench's 2,000,000, the
 * same for every thread whatever the thread count (the docs page says why).
 */
export const SCRATCH_REPETITIONS = 20_000;

/*
 * The run state: one buffer per run, shared by its threads (ThreadLoop.runState).
 *
 *   Int32 word  0  HANDOVER       EMPTY until thread 0 has allocated the objects, then READY
 *                                 (or FAILED when it could not); waited on by the others
 *               1  FINISHED       threads that have left their loop; the last one frees any
 *                                 object nobody took
 *               2  REMOTE_FREES   handed objects freed by a thread other than thread 0
 *               3  (unused, keeps the table 8-aligned)
 *   Uint32 word 4 + i             the object handed to thread i; 0 once it has taken it
 */
const HANDOVER = 0;
const FINISHED = 1;
const REMOTE_FREES = 2;
const OBJECTS = 4;

const HANDOVER_EMPTY = 0;
const HANDOVER_READY = 1;
const HANDOVER_FAILED = 2;

/**
 * How long a thread waits for thread 0's objects before it gives up, when no stop comes
 * first: thread 0's worker starts within a second, so this is only reached when it died.
 */
export const HANDOVER_TIMEOUT_MS = 30_000;
/** One wait's length: the stop flag and the deadline are read between waits. */
const WAIT_SLICE_MS = 20;

/** A fresh run state for `threads` threads (see the layout above). */
export function scratchRunState(threads: number): SharedArrayBuffer {
  return new SharedArrayBuffer((OBJECTS + threads) * Int32Array.BYTES_PER_ELEMENT);
}

/** What the run state says after a run: how many hand-over objects were freed remotely. */
export function scratchRemoteFrees(runState: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(runState), REMOTE_FREES);
}

/** The byte thread `threadIndex` writes: one per thread, so a block two threads share reads back wrong. */
export function scratchFillByte(threadIndex: number): number {
  return (threadIndex % 255) + 1;
}

/**
 * One thread's run: the hand-over (untimed), then rounds until a limit, then the sweep of
 * objects nobody took (by the last thread to finish).
 * @throws Error when `malloc` returns 0, when thread 0 could not allocate the objects or did
 *   not hand them over in time, or in verify mode when a byte read back is not the one written
 */
export function runScratchLoop(allocator: AddressAllocator, u8: Uint8Array, limits: LoopLimits, thread: ThreadParams): ThreadOutcome {
  if (thread.runState === null) throw new Error('the cache-scratch loop needs its run state');
  const state = new Int32Array(thread.runState);
  const objects = new Uint32Array(thread.runState);
  try {
    if (thread.threadIndex === 0) handOver(allocator, state, objects, thread.threads);
    if (awaitHandover(state, limits)) freeOwnObject(allocator, state, objects, thread.threadIndex);
    return runRounds(allocator, u8, limits, thread);
  } finally {
    // The last thread out frees what nobody took: the objects of threads that gave up waiting.
    if (Atomics.add(state, FINISHED, 1) === thread.threads - 1 && Atomics.load(state, HANDOVER) === HANDOVER_READY) {
      for (let index = 0; index < thread.threads; index++) {
        const left = Atomics.exchange(objects, OBJECTS + index, 0);
        if (left !== 0) allocator.free(left);
      }
    }
  }
}

/** Thread 0: allocates one object per thread, back to back, and publishes them. */
function handOver(allocator: AddressAllocator, state: Int32Array, objects: Uint32Array, threads: number): void {
  for (let index = 0; index < threads; index++) {
    const address = allocator.malloc(SCRATCH_OBJECT_SIZE);
    if (address === 0) {
      // Give back what was taken, and tell the others not to wait.
      for (let taken = 0; taken < index; taken++) allocator.free(Atomics.exchange(objects, OBJECTS + taken, 0));
      Atomics.store(state, HANDOVER, HANDOVER_FAILED);
      Atomics.notify(state, HANDOVER);
      throw new Error(`malloc(${SCRATCH_OBJECT_SIZE}) returned 0 for the object of thread ${index + 1}: the heap is full`);
    }
    Atomics.store(objects, OBJECTS + index, address);
  }
  Atomics.store(state, HANDOVER, HANDOVER_READY);
  Atomics.notify(state, HANDOVER);
}

/**
 * Waits, in bounded slices, until thread 0 has handed the objects over.
 * @returns true when they are there; false when the run was stopped first
 * @throws Error when thread 0 failed, or after `HANDOVER_TIMEOUT_MS`
 */
function awaitHandover(state: Int32Array, limits: LoopLimits): boolean {
  const givingUp = performance.now() + HANDOVER_TIMEOUT_MS;
  for (;;) {
    const handover = Atomics.load(state, HANDOVER);
    if (handover === HANDOVER_READY) return true;
    if (handover === HANDOVER_FAILED) throw new Error('thread 1 could not allocate the objects to hand over');
    const now = performance.now();
    if (Atomics.load(limits.stop, 0) !== 0 || now >= limits.deadline) return false;
    if (now >= givingUp) throw new Error(`thread 1 did not hand the objects over within ${HANDOVER_TIMEOUT_MS / 1000} s`);
    Atomics.wait(state, HANDOVER, HANDOVER_EMPTY, WAIT_SLICE_MS);
  }
}

/** Frees the object thread `threadIndex` was handed: a remote free for every thread but 0. */
function freeOwnObject(allocator: AddressAllocator, state: Int32Array, objects: Uint32Array, threadIndex: number): void {
  const own = Atomics.exchange(objects, OBJECTS + threadIndex, 0);
  if (own === 0) return;
  allocator.free(own);
  if (threadIndex !== 0) Atomics.add(state, REMOTE_FREES, 1);
}

/** The timed rounds, cache-thrash's: the stop flag and the clock are read once per round. */
function runRounds(allocator: AddressAllocator, u8: Uint8Array, limits: LoopLimits, thread: ThreadParams): ThreadOutcome {
  const { stop, deadline, maxIterations } = limits;
  const fill = scratchFillByte(thread.threadIndex);
  let rounds = 0;
  let highWater = 0;
  const started = performance.now();
  while (rounds < maxIterations && Atomics.load(stop, 0) === 0 && performance.now() < deadline) {
    const address = allocator.malloc(SCRATCH_OBJECT_SIZE);
    if (address === 0) throw new Error(`malloc(${SCRATCH_OBJECT_SIZE}) returned 0 after ${rounds} rounds: the heap is full`);
    const wrong = writeRepeatedly(u8, address, SCRATCH_OBJECT_SIZE, SCRATCH_REPETITIONS, fill);
    if (thread.verify && wrong !== 0) {
      throw new Error(
        `verify: thread ${thread.threadIndex + 1} read back ${wrong} byte(s) of its object at 0x${address.toString(16)} not as written ` +
          `(now ${u8[address]}, expected ${fill}): another thread writes the same block`,
      );
    }
    allocator.free(address);
    if (address + SCRATCH_OBJECT_SIZE > highWater) highWater = address + SCRATCH_OBJECT_SIZE;
    rounds++;
  }
  return { iterations: rounds, seconds: (performance.now() - started) / 1000, highWater };
}

/**
 * `repetitions` passes over the `size` bytes at `address`, each storing `fill` into a byte
 * and reading it back. Counting the reads that differ gives them a use the compiler cannot
 * drop, and verify mode its test.
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
