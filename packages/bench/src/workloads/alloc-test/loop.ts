/**
 * alloc-test's per-thread loop (docs/workloads/alloc-test.md), over any allocator whose
 * blocks are byte offsets into one buffer: a table of slots, half filled before timing; then
 * each operation picks a slot by the Pareto 80/20 rule and frees its block (after reading
 * every byte of it) or, when the slot is empty, allocates a block of a random size into it
 * and fills it. Each thread frees only its own blocks.
 */

import { type AddressAllocator, type LoopLimits, type LoopMemory, beginTimedPart } from '../../run/address-allocator.js';
import type { ThreadOutcome, ThreadParams } from '../../run/thread-loop.js';
import { fillBytes, verifyFill } from '../glibc-thread/loop.js';
import { AllocTestRandom, ParetoSlots } from './requests.js';

/** Slots of all threads together (the original's `maxItems`, 2^18); each thread gets its share. */
export const ALLOC_TEST_TOTAL_SLOTS = 1 << 18;
/** Sizes go up to 2^10 = 1024 bytes (the original's `maxItemSizeExp`). */
export const ALLOC_TEST_MAX_SIZE_EXPONENT = 10;
/** The original's seed, the same for every thread: every thread makes the same requests. */
export const ALLOC_TEST_SEED = 41;
/** Beyond 16 threads a thread's smallest slot group is empty (mimalloc-bench never runs more). */
export const ALLOC_TEST_MAX_THREADS = 16;
/** The slot table is set up in groups of 32 slots, one 32-bit draw saying which are filled. */
const SETUP_GROUP_SLOTS = 32;
/**
 * Operations per batch: the stop flag and the clock are read between batches (a clock read
 * costs about 50 ns; an operation of the fastest backend a few times that). A batch is a
 * call of its own, which V8 compiles as a function rather than by on-stack replacement.
 */
const BATCH_OPERATIONS = 256;

/** One thread's slots: the original's `maxItems / threads`, rounded down. */
export function allocTestSlots(threads: number): number {
  return Math.floor(ALLOC_TEST_TOTAL_SLOTS / threads);
}

/** One thread's state between batches. An address of 0 is an empty slot (no block is at 0). */
class AllocTestState {
  readonly addresses: Uint32Array;
  /** Sizes are at most 1024. */
  readonly sizes: Uint16Array;
  readonly random = new AllocTestRandom(ALLOC_TEST_SEED);
  readonly pareto: ParetoSlots;
  operations = 0;
  highWater = 0;
  /** The sum of the bytes read before each free, kept so that the reads are not dropped. */
  checksum = 0;

  constructor(readonly slots: number) {
    this.addresses = new Uint32Array(slots);
    this.sizes = new Uint16Array(slots);
    this.pareto = new ParetoSlots(slots);
  }
}

/**
 * Runs alloc-test's loop for one thread: the setup (not timed), operations until a limit,
 * then frees every block it still holds (not timed).
 * @throws Error beyond `ALLOC_TEST_MAX_THREADS` threads, when `malloc` returns 0, or in verify
 *   mode when a block lost its fill
 */
export function runAllocTestLoop(allocator: AddressAllocator, memory: LoopMemory, limits: LoopLimits, thread: ThreadParams): ThreadOutcome {
  if (thread.threads > ALLOC_TEST_MAX_THREADS) throw new Error(`alloc-test runs at most ${ALLOC_TEST_MAX_THREADS} threads, not ${thread.threads}`);
  const state = new AllocTestState(allocTestSlots(thread.threads));
  setUp(allocator, memory, state);
  beginTimedPart(limits);
  const { stop, deadline, maxIterations } = limits;
  const started = performance.now();
  while (state.operations < maxIterations && Atomics.load(stop, 0) === 0 && performance.now() < deadline) {
    runBatch(allocator, memory, state, Math.min(BATCH_OPERATIONS, maxIterations - state.operations), thread.verify);
  }
  const seconds = (performance.now() - started) / 1000;
  if (thread.leaveLive !== true) releaseAll(allocator, memory, state, thread.verify);
  return { iterations: state.operations, seconds, highWater: state.highWater };
}

/** Fills about half of the slots: each group of 32 takes the slots whose bit is set in one draw. */
function setUp(allocator: AddressAllocator, memory: LoopMemory, state: AllocTestState): void {
  const groups = Math.floor(state.slots / SETUP_GROUP_SLOTS);
  for (let group = 0; group < groups; group++) {
    const bits = state.random.next32();
    for (let bit = 0; bit < SETUP_GROUP_SLOTS; bit++) {
      if (((bits >>> bit) & 1) !== 0) allocateInto(allocator, memory, state, group * SETUP_GROUP_SLOTS + bit);
    }
  }
}

/** `count` operations from `state`. */
function runBatch(allocator: AddressAllocator, memory: LoopMemory, state: AllocTestState, count: number, verify: boolean): void {
  const { addresses, random, pareto } = state;
  for (let i = 0; i < count; i++) {
    const groupDraw = random.next32();
    const slot = pareto.pick(groupDraw, random.next32());
    if (addresses[slot] !== 0) freeSlot(allocator, memory, state, slot, verify);
    else allocateInto(allocator, memory, state, slot);
  }
  state.operations += count;
}

/** Allocates a block of a drawn size into the empty `slot` and fills it with its size's low byte, as the original's `memset`. */
function allocateInto(allocator: AddressAllocator, memory: LoopMemory, state: AllocTestState, slot: number): void {
  const size = state.random.nextSize(ALLOC_TEST_MAX_SIZE_EXPONENT);
  const address = allocator.malloc(size);
  if (address === 0) throw new Error(`malloc(${size}) returned 0: the heap is full`);
  fillBytes(memory, address, size, size & 0xff);
  state.addresses[slot] = address;
  state.sizes[slot] = size;
  if (address + size > state.highWater) state.highWater = address + size;
}

/** Reads every byte of the block in `slot` (checks it, in verify mode), then frees it. */
function freeSlot(allocator: AddressAllocator, memory: LoopMemory, state: AllocTestState, slot: number, verify: boolean): void {
  const address = state.addresses[slot]!;
  const size = state.sizes[slot]!;
  if (verify) verifyFill(memory.u8, memory.u32, address, size, size & 0xff, slot);
  else state.checksum = (state.checksum + sumBytes(memory, address, size)) | 0;
  allocator.free(address);
  state.addresses[slot] = 0;
}

/** The original reads a block whole before freeing it (summing its words): a word sum here, the tail by bytes. */
function sumBytes(memory: LoopMemory, address: number, size: number): number {
  const { u8, u32 } = memory;
  const firstWord = address >>> 2;
  const words = size >>> 2;
  let sum = 0;
  for (let i = 0; i < words; i++) sum = (sum + u32[firstWord + i]!) | 0;
  for (let at = address + (words << 2), end = address + size; at < end; at++) sum = (sum + u8[at]!) | 0;
  return sum;
}

/**
 * Frees every block still held, from the last slot down (the original goes up; the order is
 * not timed, and going down frees @thi.ng/malloc's most recent blocks first, which its free,
 * a walk of its list of live blocks from the newest, finds at once).
 */
function releaseAll(allocator: AddressAllocator, memory: LoopMemory, state: AllocTestState, verify: boolean): void {
  for (let slot = state.slots - 1; slot >= 0; slot--) {
    if (state.addresses[slot] !== 0) freeSlot(allocator, memory, state, slot, verify);
  }
}
