/**
 * sh6bench's per-thread loop (docs/workloads/sh6bench.md), over any allocator whose blocks
 * are byte offsets into one buffer. A thread owns a ring of slots and allocates into it, in
 * the order of `passSizes`, one block after the other; each time the ring is full it frees
 * every block but those of one fifth of the ring (the bottom part in allocation order, the
 * top part in reverse), and that fifth moves on by a fifth each time. Each thread frees only
 * its own blocks.
 */

import { type AddressAllocator, type LoopLimits, type LoopMemory, beginTimedPart } from '../../run/address-allocator.js';
import type { ThreadOutcome, ThreadParams } from '../../run/thread-loop.js';

/** Slots of all threads together (the original's call count, 10000 as mimalloc-bench patches it); each thread gets its share. */
export const SH6_TOTAL_SLOTS = 10_000;
/** Block sizes run from 1 (the original's minimum) to below 1000 (its maximum). */
export const SH6_MIN_SIZE = 1;
export const SH6_MAX_SIZE = 1000;
/** The share of the ring kept over a cycle: one fifth. */
const KEPT_SHARE_DIVISOR = 5;
/**
 * Allocations per batch: the stop flag and the clock are read between batches (a clock
 * read costs about 50 ns, an allocation of the fastest backend a few times that).
 */
const BATCH_ALLOCATIONS = 256;

/**
 * The sizes of one pass of the original's loops, in order: size bases from 1, each the last
 * times 3/2 plus 1 while below 1000; for each base, the base halved down to 1; for each
 * size, 250 blocks below 100 bytes, 50 below 1000 (10 below 10000, 1 above, which this
 * maximum never reaches). 19300 allocations.
 */
export function sh6PassSizes(minSize: number = SH6_MIN_SIZE, maxSize: number = SH6_MAX_SIZE): Uint16Array {
  const sizes: number[] = [];
  for (let base = minSize; base < maxSize; base = Math.floor((base * 3) / 2) + 1) {
    for (let size = base; size > 0; size = Math.floor(size / 2)) {
      let repeat = size < 10_000 ? 10 : 1;
      if (size < 1000) repeat *= 5;
      if (size < 100) repeat *= 5;
      for (let i = 0; i < repeat; i++) sizes.push(size);
    }
  }
  return Uint16Array.from(sizes);
}

const PASS_SIZES = sh6PassSizes();

/** One thread's slots: the original divides its call count by the threads, rounding down. */
export function sh6Slots(threads: number): number {
  return Math.floor(SH6_TOTAL_SLOTS / threads);
}

/** One thread's state between batches. */
class Sh6State {
  readonly addresses: Uint32Array;
  /** Verify mode only: each slot's size and the byte written at both ends. */
  readonly sizes: Uint16Array;
  readonly marks: Uint8Array;
  /** The next slot to allocate into. */
  cursor = 0;
  /** The kept fifth: slots [keptStart, keptEnd). At first none (both at the ring's end). */
  keptStart: number;
  keptEnd: number;
  /** The next entry of `PASS_SIZES`. */
  passCursor = 0;
  allocations = 0;
  highWater = 0;

  constructor(readonly slots: number) {
    this.addresses = new Uint32Array(slots);
    this.sizes = new Uint16Array(slots);
    this.marks = new Uint8Array(slots);
    this.keptStart = slots;
    this.keptEnd = slots;
  }
}

/**
 * Runs sh6bench's loop for one thread: allocations until a limit (the frees at each full ring
 * are timed with them), then frees what is left (not timed).
 * @throws Error when `malloc` returns 0, or in verify mode when a block lost its end bytes
 */
export function runSh6Loop(allocator: AddressAllocator, memory: LoopMemory, limits: LoopLimits, thread: ThreadParams): ThreadOutcome {
  const state = new Sh6State(sh6Slots(thread.threads));
  beginTimedPart(limits);
  const { stop, deadline, maxIterations } = limits;
  const started = performance.now();
  while (state.allocations < maxIterations && Atomics.load(stop, 0) === 0 && performance.now() < deadline) {
    runBatch(allocator, memory, state, Math.min(BATCH_ALLOCATIONS, maxIterations - state.allocations), thread.verify);
  }
  const seconds = (performance.now() - started) / 1000;
  for (let slot = 0; slot < (thread.leaveLive === true ? 0 : state.slots); slot++) {
    if (state.addresses[slot] !== 0) freeSlot(allocator, memory, state, slot, thread.verify);
  }
  return { iterations: state.allocations, seconds, highWater: state.highWater };
}

/** `count` allocations from `state`. */
function runBatch(allocator: AddressAllocator, memory: LoopMemory, state: Sh6State, count: number, verify: boolean): void {
  const { addresses, slots } = state;
  const u8 = memory.u8;
  for (let i = 0; i < count; i++) {
    const size = PASS_SIZES[state.passCursor]!;
    state.passCursor = state.passCursor + 1 === PASS_SIZES.length ? 0 : state.passCursor + 1;
    const address = allocator.malloc(size);
    if (address === 0) throw new Error(`malloc(${size}) returned 0: the heap is full`);
    // The original (as mimalloc-bench patches it) writes the first and the last byte.
    const mark = state.allocations & 0xff;
    u8[address] = mark;
    u8[address + size - 1] = mark;
    const slot = state.cursor;
    addresses[slot] = address;
    if (verify) {
      state.sizes[slot] = size;
      state.marks[slot] = mark;
    }
    if (address + size > state.highWater) state.highWater = address + size;
    state.allocations++;
    state.cursor = slot + 1 === state.keptStart ? state.keptEnd : slot + 1;
    if (state.cursor >= slots) freeAllButNextFifth(allocator, memory, state, verify);
  }
}

/**
 * The full ring's frees: the kept fifth moves on by a fifth (back to the start past the
 * end); every slot below it is freed in allocation order, every slot above it in reverse.
 * The cursor then starts over, past the kept fifth when that is at the start: the original
 * skips the kept fifth only once it has allocated into its first slot, so when the fifth is at
 * the start it overwrites it, losing (never freeing) its blocks; heaplab skips it.
 */
function freeAllButNextFifth(allocator: AddressAllocator, memory: LoopMemory, state: Sh6State, verify: boolean): void {
  const slots = state.slots;
  state.keptStart = state.keptEnd >= slots ? 0 : state.keptEnd;
  state.keptEnd = Math.min(state.keptStart + Math.floor(slots / KEPT_SHARE_DIVISOR), slots);
  for (let slot = 0; slot < state.keptStart; slot++) freeSlot(allocator, memory, state, slot, verify);
  for (let slot = slots - 1; slot >= state.keptEnd; slot--) freeSlot(allocator, memory, state, slot, verify);
  state.cursor = state.keptStart === 0 ? state.keptEnd : 0;
}

/** Frees the block in `slot` (checking its end bytes first, in verify mode). */
function freeSlot(allocator: AddressAllocator, memory: LoopMemory, state: Sh6State, slot: number, verify: boolean): void {
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
