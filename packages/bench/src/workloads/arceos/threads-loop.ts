/**
 * ArceOS's `multi_thread_test` (docs/workloads/arceos.md) as a thread loop: every thread of a
 * run allocates into its share of a slot table in the run's shared buffer, frees half of its
 * own blocks, and, once all have done so, allocates into the slots just emptied (its own
 * range of them) and frees its whole share of the table, which is now mostly blocks other
 * threads allocated. A round ends when every thread has freed its share; `maxIterations`
 * rounds run. Sizes are `2^(r % 12) + 2^(r' % 12)` bytes, from libax's generator seeded
 * with 2333 plus the thread's index.
 *
 * The original starts ten new threads for each phase and waits for them all; here the
 * workers live through the run and meet at a barrier instead, so the cross-thread frees are
 * the same (the thread that frees a block did not allocate it) without the thread starts.
 */

import type { AddressAllocator, LoopLimits, LoopMemory } from '../../run/address-allocator.js';
import type { ThreadOutcome, ThreadParams } from '../../run/thread-loop.js';
import { ARCEOS_SEED, LibaxRandom } from './libax-random.js';

/** Blocks in each thread's share of the table (the original's NUM_ARRAY_PRE_THREAD). */
export const BLOCKS_PER_THREAD = 1000;
/** The original's thread count (NUM_TASKS) and rounds (MUN_TURN). */
export const ARCEOS_THREADS = 10;
export const ARCEOS_ROUNDS = 100;
const SIZE_EXPONENTS = 12;

// The run's shared buffer, as 32-bit words:
//
//   word 0                  ARRIVED: threads at the barrier in this generation
//   word 1                  GENERATION: bumped by the last thread to arrive; the others wait on it
//   word 2                  REMOTE_FREES: frees of blocks another thread allocated, all threads
//   word 3                  unused
//   SLOTS_START ..          ADDRESS of each slot's block (0: empty), threads x BLOCKS_PER_THREAD words
//   .. then                 SIZE of each slot's block (0: empty; written after the address and the
//                           owner, so a non-zero size means the slot is ready), as many words again
//   .. then                 OWNER: the index of the thread that allocated the slot's block
//
// Slot `j * threads + t` is thread t's j-th block of the first phase; the second phase's
// blocks go to the upper half, thread t's to `threads * B/2 + t * B/2 + j`.
const ARRIVED = 0;
const GENERATION = 1;
const REMOTE_FREES = 2;
const SLOTS_START = 4;
/** Words per slot: its address, size and owner. */
const SLOT_FIELDS = 3;

/** The run's shared buffer for `threads` threads. */
export function threadsRunState(threads: number): SharedArrayBuffer {
  return new SharedArrayBuffer((SLOTS_START + SLOT_FIELDS * threads * BLOCKS_PER_THREAD) * 4);
}

/** Frees of blocks another thread allocated, over a run whose shared buffer is `runState`. */
export function remoteFreesOf(runState: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(runState), REMOTE_FREES);
}

/** How long a thread waits for the others at most: far beyond a round's time, so only a stuck run meets it. */
const WAIT_LIMIT_MS = 60_000;
/** One wait's length, between checks of the stop flag. */
const WAIT_SLICE_MS = 50;

/** A thread's view of the run's table. */
class SlotTable {
  private readonly words: Int32Array;
  private readonly sizes: number;
  private readonly owners: number;
  /** This thread's frees of other threads' blocks, added to REMOTE_FREES at the end. */
  remoteFrees = 0;

  constructor(
    buffer: SharedArrayBuffer,
    private readonly threads: number,
    private readonly threadIndex: number,
    private readonly limits: LoopLimits,
  ) {
    this.words = new Int32Array(buffer);
    this.sizes = SLOTS_START + threads * BLOCKS_PER_THREAD;
    this.owners = this.sizes + threads * BLOCKS_PER_THREAD;
  }

  fill(slot: number, address: number, size: number): void {
    Atomics.store(this.words, SLOTS_START + slot, address);
    Atomics.store(this.words, this.owners + slot, this.threadIndex);
    Atomics.store(this.words, this.sizes + slot, size);
    Atomics.notify(this.words, this.sizes + slot);
  }

  /**
   * Empties `slot` once its block is there (at once when it is), counting it when another
   * thread allocated it.
   * @returns the block's address and size
   * @throws Error when the run stops or the wait exceeds its limit
   */
  take(slot: number): { address: number; size: number } {
    const sizeIndex = this.sizes + slot;
    let size = Atomics.load(this.words, sizeIndex);
    if (size === 0) size = this.waitWhile(sizeIndex, 0, `slot ${slot} to be filled`);
    const address = Atomics.load(this.words, SLOTS_START + slot) >>> 0;
    if (Atomics.load(this.words, this.owners + slot) !== this.threadIndex) this.remoteFrees++;
    Atomics.store(this.words, SLOTS_START + slot, 0);
    Atomics.store(this.words, sizeIndex, 0);
    return { address, size };
  }

  /** Adds this thread's remote frees to the run's count. */
  publish(): void {
    Atomics.add(this.words, REMOTE_FREES, this.remoteFrees);
  }

  /**
   * Waits until every thread of the run has arrived here.
   * @throws Error when the run stops or the wait exceeds its limit
   */
  barrier(): void {
    const generation = Atomics.load(this.words, GENERATION);
    if (Atomics.add(this.words, ARRIVED, 1) + 1 === this.threads) {
      Atomics.store(this.words, ARRIVED, 0);
      Atomics.add(this.words, GENERATION, 1);
      Atomics.notify(this.words, GENERATION);
      return;
    }
    this.waitWhile(GENERATION, generation, 'the other threads at the barrier');
  }

  /** Waits while word `index` holds `value`; returns its new value. */
  private waitWhile(index: number, value: number, what: string): number {
    const started = performance.now();
    for (;;) {
      const now = Atomics.load(this.words, index);
      if (now !== value) return now;
      if (Atomics.load(this.limits.stop, 0) !== 0) throw new Error(`stopped while waiting for ${what} (another thread failed)`);
      if (performance.now() - started > WAIT_LIMIT_MS) throw new Error(`waited ${WAIT_LIMIT_MS / 1000} s for ${what}`);
      Atomics.wait(this.words, index, value, WAIT_SLICE_MS);
    }
  }
}

/** Marks a block's first and last bytes with its slot; the smallest block is 2 bytes. */
function mark(u8: Uint8Array, address: number, size: number, slot: number): void {
  u8[address] = slot & 0xff;
  u8[address + size - 1] = (slot >>> 8) & 0xff;
}

function checkMark(u8: Uint8Array, address: number, size: number, slot: number): void {
  if (u8[address] !== (slot & 0xff) || u8[address + size - 1] !== ((slot >>> 8) & 0xff)) {
    throw new Error(`the block of ${size} bytes in slot ${slot} lost its marks before its free`);
  }
}

function allocate(allocator: AddressAllocator, size: number): number {
  const address = allocator.malloc(size);
  if (address === 0) throw new Error(`malloc(${size}) returned 0: the heap has no room`);
  return address;
}

/**
 * One thread's rounds. Its time starts after the first barrier, when every thread has
 * attached to the heap, and ends after its last round.
 * @throws Error when `maxIterations` is not finite (the threads must agree on the rounds),
 *   when the heap has no room, when a block lost its marks, or when a wait fails
 */
export function runThreadsLoop(allocator: AddressAllocator, memory: LoopMemory, limits: LoopLimits, thread: ThreadParams): ThreadOutcome {
  if (!Number.isFinite(limits.maxIterations)) throw new Error('the ArceOS thread test runs a fixed number of rounds (maxIterations)');
  if (thread.runState === null) throw new Error('the ArceOS thread test needs its run state');
  const { threads, threadIndex } = thread;
  const table = new SlotTable(thread.runState, threads, threadIndex, limits);
  const random = new LibaxRandom(ARCEOS_SEED + threadIndex);
  const u8 = memory.u8;
  const half = BLOCKS_PER_THREAD / 2;
  const drawSize = (): number => (1 << (random.u32() % SIZE_EXPONENTS)) + (1 << (random.u32() % SIZE_EXPONENTS));
  table.barrier();
  const started = performance.now();
  let rounds = 0;
  for (; rounds < limits.maxIterations; rounds++) {
    for (let j = 0; j < BLOCKS_PER_THREAD; j++) {
      const slot = j * threads + threadIndex;
      const size = drawSize();
      const address = allocate(allocator, size);
      mark(u8, address, size, slot);
      table.fill(slot, address, size);
    }
    for (let j = half; j < BLOCKS_PER_THREAD; j++) {
      const slot = j * threads + threadIndex;
      const { address, size } = table.take(slot);
      checkMark(u8, address, size, slot);
      allocator.free(address);
    }
    table.barrier();
    for (let j = 0; j < half; j++) {
      const slot = threads * half + threadIndex * half + j;
      const size = drawSize();
      const address = allocate(allocator, size);
      mark(u8, address, size, slot);
      table.fill(slot, address, size);
    }
    for (let j = 0; j < BLOCKS_PER_THREAD; j++) {
      const slot = j * threads + threadIndex;
      const { address, size } = table.take(slot);
      checkMark(u8, address, size, slot);
      allocator.free(address);
    }
    table.barrier();
  }
  const seconds = (performance.now() - started) / 1000;
  table.publish();
  return { iterations: rounds, seconds, highWater: 0 };
}
