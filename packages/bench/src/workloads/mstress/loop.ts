/**
 * The mstress loop (docs/workloads/mstress.md): mimalloc's stress test as mimalloc-bench runs
 * it (`mstress THREADS 50 25`), turned into rounds that repeat until the run is over.
 *
 * In a round, thread t makes `100 * SCALE * (t % 8 + 1)` short-lived allocations and half as
 * many retained ones, in a random order; after each allocation it may free a random
 * short-lived block (66 %) and may swap a random short-lived block with a random slot of the
 * transfer array that every thread shares (25 %), so a block allocated by one thread is
 * freed by another. Every block holds a pattern derived from its length, checked in full
 * before it is freed. A step is one allocation; the thread counts steps.
 *
 * The run's shared buffer (`ThreadLoop.runState`), as 32-bit words:
 *
 *   word  0                   1                2               3               4 ... 4 + 999
 *        +-------------------+----------------+---------------+---------------+----------------------+
 *        | ACTIVE_THREADS    | DRAINED_BLOCKS | REMOTE_FREES  | TAKEN_BLOCKS  | TRANSFER_SLOTS       |
 *        | threads not yet   | blocks the     | blocks freed  | blocks taken  | one block address    |
 *        | past their loop   | last thread    | by a thread   | out of a slot | per slot, 0 = empty  |
 *        | (set to THREADS)  | found in slots | that did not  | by a swap     | (atomic exchange)    |
 *        |                   |                | allocate them |               |                      |
 *        +-------------------+----------------+---------------+---------------+----------------------+
 *
 * The counters after ACTIVE_THREADS are figures for tests and the docs; the loop reads none.
 * REMOTE_FREES is a lower bound: each thread knows its own live blocks by a bitmap of its
 * own, and a bit stays set when another thread frees the block, so a later block at that
 * address freed by this thread is counted as its own.
 */

import type { AddressAllocator, LoopLimits, LoopMemory } from '../../run/address-allocator.js';
import type { ThreadOutcome, ThreadParams } from '../../run/thread-loop.js';

/** mimalloc-bench's second argument: each thread's load, in hundreds of allocations per round. */
export const MSTRESS_SCALE = 50;
/** Slots of the transfer array (the original's TRANSFERS). */
export const TRANSFER_SLOT_COUNT = 1000;
/** Short-lived blocks are 1 << (draw % 5) items (1..16), retained ones 1 << (draw % 7) (1..64). */
const DATA_ITEM_SHIFTS = 5;
const RETAINED_ITEM_SHIFTS = 7;
/** Bytes per item: the original's items are 64-bit words. */
export const ITEM_BYTES = 8;
/** Entries by which the array of short-lived blocks grows (the original's realloc step). */
const DATA_ARRAY_GROWTH = 100_000;
/** Bytes per entry of the block arrays: a heap address. */
const ENTRY_BYTES = 4;
/**
 * The pattern's 64-bit cookie, as two 32-bit halves: item i of an n-item block holds
 * `(n - i) ^ cookie`, and n - i < 2^32, so the high half always holds the cookie's high half.
 * The bytes are those the 64-bit original writes.
 */
export const COOKIE_LOW = 0x1ce4e5b9;
export const COOKIE_HIGH = 0xbf58476d;
/** The largest block: a retained block of 64 items, made giant (x 10000). */
const MAX_ITEMS = (1 << (RETAINED_ITEM_SHIFTS - 1)) * 10_000;
/** Steps between two reads of the stop flag and the clock. */
const STOP_CHECK_INTERVAL = 64;

/** Word indexes of the run's shared buffer (see the drawing above). */
export const ACTIVE_THREADS = 0;
export const DRAINED_BLOCKS = 1;
export const REMOTE_FREES = 2;
export const TAKEN_BLOCKS = 3;
export const TRANSFER_SLOTS = 4;
const RUN_STATE_WORDS = TRANSFER_SLOTS + TRANSFER_SLOT_COUNT;

/** A fresh shared buffer for a run of `threads` threads: every thread active, every slot empty. */
export function mstressRunState(threads: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(RUN_STATE_WORDS * 4);
  new Int32Array(buffer)[ACTIVE_THREADS] = threads;
  return buffer;
}

/** Round allocations of thread `threadIndex`: some threads do more (the original's `tid % 8 + 1`). */
export function roundAllocations(threadIndex: number, scale = MSTRESS_SCALE): number {
  return 100 * scale * ((threadIndex % 8) + 1);
}

/**
 * The original's generator in its 32-bit form (a 32-bit integer hash applied to the state,
 * by Chris Wellons), which the C port uses too; its 64-bit builds use splitmix64's mixer,
 * which would need BigInt here. Thread t starts from `(t + 1) * 43`.
 */
export class StressRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  pick(): number {
    let x = this.state;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    this.state = x >>> 0;
    return this.state;
  }

  /** True with a chance of (percent + 1) in 100, as the original's `pick % 100 <= percent`. */
  chance(percent: number): boolean {
    return this.pick() % 100 <= percent;
  }
}

/** Thrown when a block's pattern is not what its allocation wrote. */
export class CorruptionError extends Error {}

/** One thread of a run: its generator, its counters and the views it works through. */
class StressThread {
  readonly random: StressRandom;
  readonly u32: Uint32Array;
  readonly slots: Uint32Array;
  /**
   * One bit per 8 bytes of the heap: set while a block this thread allocated is live, so a
   * free can tell the thread's own blocks from blocks it took from the transfer array.
   */
  readonly mine: Uint32Array;
  steps = 0;
  remoteFrees = 0;
  taken = 0;
  highWater = 0;

  constructor(
    readonly allocator: AddressAllocator,
    memory: LoopMemory,
    runState: SharedArrayBuffer,
    readonly threadIndex: number,
  ) {
    this.random = new StressRandom((threadIndex + 1) * 43);
    this.u32 = memory.u32;
    this.slots = new Uint32Array(runState);
    this.mine = new Uint32Array(Math.ceil(memory.u8.length / 256));
  }

  /** A block of `items` items (maybe made large, huge or giant), filled with its pattern. */
  allocItems(baseItems: number): number {
    let items = baseItems;
    const random = this.random;
    if (random.chance(1)) {
      if (random.chance(1)) items *= 10_000;
      else if (random.chance(10)) items *= 1000;
      else items *= 100;
    }
    // The original skips 40 items (a size pthreads uses); no power of two times 100 is 40.
    if (items === 40) items++;
    const bytes = items * ITEM_BYTES;
    const address = this.allocator.malloc(bytes);
    if (address === 0) throw new Error(`malloc(${bytes}) returned 0 after ${this.steps} steps: the heap is full`);
    const u32 = this.u32;
    for (let i = 0, word = address >>> 2; i < items; i++, word += 2) {
      u32[word] = (items - i) ^ COOKIE_LOW;
      u32[word + 1] = COOKIE_HIGH;
    }
    this.mine[address >>> 8]! |= 1 << ((address >>> 3) & 31);
    if (address + bytes > this.highWater) this.highWater = address + bytes;
    return address;
  }

  /**
   * Checks the block's pattern and frees it; 0 is no block.
   * @throws CorruptionError naming the block and the first wrong item
   */
  freeItems(address: number): void {
    if (address === 0) return;
    const u32 = this.u32;
    const first = address >>> 2;
    const items = (u32[first]! ^ COOKIE_LOW) >>> 0;
    if (items === 0 || items > MAX_ITEMS) this.corrupt(address, 0);
    for (let i = 0, word = first; i < items; i++, word += 2) {
      if (u32[word] !== ((items - i) ^ COOKIE_LOW) >>> 0 || u32[word + 1] !== COOKIE_HIGH) this.corrupt(address, i);
    }
    const bit = 1 << ((address >>> 3) & 31);
    const index = address >>> 8;
    if ((this.mine[index]! & bit) !== 0) this.mine[index]! &= ~bit;
    else this.remoteFrees++;
    this.allocator.free(address);
  }

  corrupt(address: number, item: number): never {
    throw new CorruptionError(`memory corruption at block 0x${address.toString(16)} at item ${item} (thread ${this.threadIndex}, step ${this.steps})`);
  }

  /** Swaps `address` into transfer slot `slot` and returns what the slot held. */
  exchange(slot: number, address: number): number {
    const taken = Atomics.exchange(this.slots, TRANSFER_SLOTS + slot, address);
    if (taken !== 0) this.taken++;
    return taken;
  }
}

/** Where a round got to; the thread frees what it lists, whether the round ended or was cut short. */
interface Round {
  /** Heap array of short-lived block addresses (0 until the first allocation), and its length in entries. */
  data: number;
  dataSize: number;
  dataTop: number;
  /** Heap array of retained block addresses. */
  retained: number;
  retainedTop: number;
}

/**
 * Runs one thread: rounds until a limit, then (untimed) frees what the round holds; the last
 * thread to finish frees the blocks left in the transfer array.
 * @throws CorruptionError when a block's pattern changed, Error when `malloc` returns 0
 */
export function runMstressLoop(
  allocator: AddressAllocator,
  memory: LoopMemory,
  limits: LoopLimits,
  thread: ThreadParams,
  scale = MSTRESS_SCALE,
): ThreadOutcome {
  if (thread.runState === null) throw new Error('the mstress loop needs its run state (the transfer array)');
  const state = new StressThread(allocator, memory, thread.runState, thread.threadIndex);
  const counters = new Int32Array(thread.runState);
  const started = performance.now();
  let seconds = 0;
  let failed = true;
  try {
    for (;;) {
      const round = runRound(state, limits, thread, scale);
      if (round !== null) {
        // Cut short by a limit: the clock stops before the round's blocks are freed.
        seconds = (performance.now() - started) / 1000;
        if (thread.leaveLive !== true) freeRound(state, round);
        break;
      }
      freeHalfOfStripe(state, thread);
    }
    failed = false;
  } finally {
    Atomics.add(counters, REMOTE_FREES, state.remoteFrees);
    Atomics.add(counters, TAKEN_BLOCKS, state.taken);
    // Every swap of this thread happened before this; the thread that brings the count to 0
    // is the last one that could put a block in a slot, so it empties them all. No thread
    // waits for another. A thread that failed leaves the slots (its run fails anyway): its
    // error, not a second one from the drain, is the run's.
    if (Atomics.sub(counters, ACTIVE_THREADS, 1) === 1 && !failed && thread.leaveLive !== true) drainTransferSlots(state, counters);
  }
  return { iterations: state.steps, seconds, highWater: state.highWater };
}

/**
 * One round of thread `thread.threadIndex`. Returns null when it ran to its end (its blocks
 * freed, timed), or where it got to when a limit cut it short.
 */
function runRound(state: StressThread, limits: LoopLimits, thread: ThreadParams, scale: number): Round | null {
  const { allocator, random, u32 } = state;
  const { stop, deadline, maxIterations } = limits;
  let allocs = roundAllocations(thread.threadIndex, scale);
  let retain = allocs >>> 1;
  const round: Round = { data: 0, dataSize: 0, dataTop: 0, retained: 0, retainedTop: 0 };
  round.retained = allocator.malloc(retain * ENTRY_BYTES);
  if (round.retained === 0) throw new Error(`malloc(${retain * ENTRY_BYTES}) returned 0: the heap is full`);
  const retainedWords = round.retained >>> 2;
  let dataWords = 0;
  while (allocs > 0 || retain > 0) {
    if (state.steps >= maxIterations) return round;
    if (state.steps % STOP_CHECK_INTERVAL === 0 && (Atomics.load(stop, 0) !== 0 || performance.now() >= deadline)) return round;
    if (retain === 0 || (random.chance(50) && allocs > 0)) {
      allocs--;
      if (round.dataTop >= round.dataSize) {
        round.dataSize += DATA_ARRAY_GROWTH;
        const bytes = round.dataSize * ENTRY_BYTES;
        const grown = round.data === 0 ? allocator.malloc(bytes) : allocator.realloc(round.data, bytes);
        if (grown === 0) throw new Error(`growing the block array to ${bytes} bytes failed: the heap is full`);
        round.data = grown;
        dataWords = grown >>> 2;
      }
      u32[dataWords + round.dataTop++] = state.allocItems(1 << (random.pick() % DATA_ITEM_SHIFTS));
    } else {
      u32[retainedWords + round.retainedTop++] = state.allocItems(1 << (random.pick() % RETAINED_ITEM_SHIFTS));
      retain--;
    }
    state.steps++;
    if (random.chance(66) && round.dataTop > 0) {
      const index = dataWords + (random.pick() % round.dataTop);
      state.freeItems(u32[index]!);
      u32[index] = 0;
    }
    if (random.chance(25) && round.dataTop > 0) {
      const index = dataWords + (random.pick() % round.dataTop);
      const slot = random.pick() % TRANSFER_SLOT_COUNT;
      u32[index] = state.exchange(slot, u32[index]!);
    }
  }
  freeRound(state, round);
  return null;
}

/** Frees every block a round holds, then its two arrays (as the original's thread does at its end). */
function freeRound(state: StressThread, round: Round): void {
  const { allocator, u32 } = state;
  for (let i = 0, word = round.retained >>> 2; i < round.retainedTop; i++) state.freeItems(u32[word + i]!);
  for (let i = 0, word = round.data >>> 2; i < round.dataTop; i++) state.freeItems(u32[word + i]!);
  allocator.free(round.retained);
  if (round.data !== 0) allocator.free(round.data);
}

/**
 * Between rounds the original's main thread frees each transfer slot's block with a chance
 * of one half; rounds here are not in step, so each thread does it after its own rounds, for
 * its stripe of slots (those whose index is its own modulo the thread count).
 */
function freeHalfOfStripe(state: StressThread, thread: ThreadParams): void {
  for (let slot = thread.threadIndex; slot < TRANSFER_SLOT_COUNT; slot += thread.threads) {
    if (state.random.chance(50)) state.freeItems(state.exchange(slot, 0));
  }
}

/** The last thread out: frees every block still in a transfer slot (untimed), each checked. */
function drainTransferSlots(state: StressThread, counters: Int32Array): void {
  let drained = 0;
  for (let slot = 0; slot < TRANSFER_SLOT_COUNT; slot++) {
    const address = Atomics.exchange(state.slots, TRANSFER_SLOTS + slot, 0);
    if (address === 0) continue;
    state.freeItems(address);
    drained++;
  }
  Atomics.add(counters, DRAINED_BLOCKS, drained);
}
