/**
 * mid-large's per-thread loop (docs/workloads/mid-large.md): each thread keeps a working set
 * of `MID_LARGE_WORKING_SET` blocks of 8..32 KiB and replaces a random one of them per
 * iteration: it frees the block, allocates one of a new random size and writes its first and
 * last bytes (the pages at both ends of a mid-size block, which is what a program that uses
 * such a block at all touches). Each thread frees only its own blocks.
 */

import { Random } from '@heaplab/core';

import { type AddressAllocator, type LoopLimits, type LoopMemory, beginTimedPart } from '../../run/address-allocator.js';
import type { ThreadOutcome, ThreadParams } from '../../run/thread-loop.js';

/** Block sizes are uniform in [MID_LARGE_MIN_SIZE, MID_LARGE_MAX_SIZE]. */
export const MID_LARGE_MIN_SIZE = 8 << 10;
export const MID_LARGE_MAX_SIZE = 32 << 10;
/**
 * Blocks each thread holds: 256 of 20 KiB on average, 5 MiB per thread and 20 MiB for four
 * threads, well above any cache and under the heap of docs/workloads/mid-large.md on every
 * backend (the largest need, buddy's blocks of 16, 32 and 64 KiB, is measured there).
 */
export const MID_LARGE_WORKING_SET = 256;
/**
 * Iterations per batch: the stop flag and the clock are read between batches (a clock read
 * costs about 50 ns; an iteration several hundred).
 */
const BATCH_ITERATIONS = 64;

/** One thread's state between batches. */
class MidLargeState {
  readonly addresses = new Uint32Array(MID_LARGE_WORKING_SET);
  /** Each slot's size and the byte written at both ends, for verify mode (two stores per block, against a free and a malloc). */
  readonly sizes = new Uint32Array(MID_LARGE_WORKING_SET);
  readonly marks = new Uint8Array(MID_LARGE_WORKING_SET);
  iterations = 0;
  highWater = 0;

  constructor(readonly random: Random) {}
}

/** The generator of thread `threadIndex`: seeded with its number, so every run of a backend does the same work. */
export function midLargeRandom(threadIndex: number): Random {
  return new Random(threadIndex + 1);
}

/** A block size of the workload's range, from `random`. */
export function midLargeSize(random: Random): number {
  return random.int(MID_LARGE_MIN_SIZE, MID_LARGE_MAX_SIZE + 1);
}

/**
 * Runs mid-large's loop for one thread: fills the working set (not timed), replaces blocks
 * until a limit, then frees the working set (not timed).
 * @throws Error when `malloc` returns 0, or in verify mode when a block lost its end bytes
 */
export function runMidLargeLoop(allocator: AddressAllocator, memory: LoopMemory, limits: LoopLimits, thread: ThreadParams): ThreadOutcome {
  const state = new MidLargeState(midLargeRandom(thread.threadIndex));
  for (let slot = 0; slot < MID_LARGE_WORKING_SET; slot++) allocateInto(allocator, memory, state, slot);
  beginTimedPart(limits);
  const { stop, deadline, maxIterations } = limits;
  const started = performance.now();
  while (state.iterations < maxIterations && Atomics.load(stop, 0) === 0 && performance.now() < deadline) {
    runBatch(allocator, memory, state, Math.min(BATCH_ITERATIONS, maxIterations - state.iterations), thread.verify);
  }
  const seconds = (performance.now() - started) / 1000;
  if (thread.leaveLive !== true) for (let slot = 0; slot < MID_LARGE_WORKING_SET; slot++) freeSlot(allocator, memory, state, slot, thread.verify);
  return { iterations: state.iterations, seconds, highWater: state.highWater };
}

/** `count` replacements from `state`. */
function runBatch(allocator: AddressAllocator, memory: LoopMemory, state: MidLargeState, count: number, verify: boolean): void {
  for (let i = 0; i < count; i++) {
    const slot = state.random.int(0, MID_LARGE_WORKING_SET);
    freeSlot(allocator, memory, state, slot, verify);
    allocateInto(allocator, memory, state, slot);
    state.iterations++;
  }
}

/** Allocates a block of a drawn size into `slot` and writes its first and last bytes. */
function allocateInto(allocator: AddressAllocator, memory: LoopMemory, state: MidLargeState, slot: number): void {
  const size = midLargeSize(state.random);
  const address = allocator.malloc(size);
  if (address === 0) throw new Error(`malloc(${size}) returned 0: the heap is full`);
  const mark = state.iterations & 0xff;
  memory.u8[address] = mark;
  memory.u8[address + size - 1] = mark;
  state.addresses[slot] = address;
  state.sizes[slot] = size;
  state.marks[slot] = mark;
  if (address + size > state.highWater) state.highWater = address + size;
}

/** Frees the block in `slot` (checking its end bytes first, in verify mode). */
function freeSlot(allocator: AddressAllocator, memory: LoopMemory, state: MidLargeState, slot: number, verify: boolean): void {
  const address = state.addresses[slot]!;
  if (verify) {
    const size = state.sizes[slot]!;
    const mark = state.marks[slot]!;
    if (memory.u8[address] !== mark || memory.u8[address + size - 1] !== mark) {
      throw new Error(
        `verify: the ${size}-byte block in slot ${slot} at 0x${address.toString(16)} has end bytes ` +
          `${memory.u8[address]}, ${memory.u8[address + size - 1]}, expected ${mark}: another allocation overlapped it`,
      );
    }
  }
  allocator.free(address);
  state.addresses[slot] = 0;
}

/**
 * The `system` baseline's loop: `new Uint8Array(n)` per block, freed by dropping its
 * reference for V8's garbage collector; the same draws as `runMidLargeLoop`, so the same
 * sizes are requested. `highWater` is 0: there is no heap to measure.
 * @throws Error in verify mode when a block lost its end bytes (it cannot, unless V8 is broken)
 */
export function runSystemMidLargeLoop(limits: LoopLimits, thread: ThreadParams): ThreadOutcome {
  const random = midLargeRandom(thread.threadIndex);
  const blocks: Uint8Array[] = [];
  const marks = new Uint8Array(MID_LARGE_WORKING_SET);
  for (let slot = 0; slot < MID_LARGE_WORKING_SET; slot++) blocks.push(touched(new Uint8Array(midLargeSize(random)), 0));
  beginTimedPart(limits);
  const { stop, deadline, maxIterations } = limits;
  let iterations = 0;
  const started = performance.now();
  while (iterations < maxIterations) {
    if (iterations % BATCH_ITERATIONS === 0 && (Atomics.load(stop, 0) !== 0 || performance.now() >= deadline)) break;
    const slot = random.int(0, MID_LARGE_WORKING_SET);
    if (thread.verify) {
      const held = blocks[slot]!;
      if (held[0] !== marks[slot] || held[held.length - 1] !== marks[slot]) throw new Error(`verify: the system block in slot ${slot} lost its end bytes`);
    }
    const mark = iterations & 0xff;
    blocks[slot] = touched(new Uint8Array(midLargeSize(random)), mark);
    marks[slot] = mark;
    iterations++;
  }
  return { iterations, seconds: (performance.now() - started) / 1000, highWater: 0 };
}

function touched(block: Uint8Array, mark: number): Uint8Array {
  block[0] = mark;
  block[block.length - 1] = mark;
  return block;
}
