/**
 * The larson loop (docs/workloads/larson.md): Larson and Krishnan's server-like benchmark,
 * over any allocator whose blocks are byte offsets into one buffer.
 *
 * Each chunk array of the original is a lane of work: its thread frees a random chunk and
 * allocates a random-size replacement, `rounds x chunks` times (a generation), then a NEW
 * thread continues on the same array, so later threads free blocks that earlier threads
 * allocated. A heaplab run has a fixed set of threads, so here a thread that ends a
 * generation puts its array back in a pool (in the run's shared state) and takes an array
 * that another thread released: every generation after the first continues on blocks
 * another thread allocated. A thread that finds no such array waits for one (bounded
 * waits); alone (one thread, or the others gone) it continues on its own.
 *
 * The arrays live in `ThreadParams.runState`, with the run's parameters (so tests can run
 * small ones in real workers), each array's generator state (it travels with the array, as
 * in the original) and each thread's counters, read after the run by `readLarsonStats`.
 */

import type { AddressAllocator, LoopLimits, LoopMemory } from '../../run/address-allocator.js';
import type { ThreadOutcome, ThreadParams } from '../../run/thread-loop.js';
import { LRAN2_STATE_WORDS, Lran2 } from './lran2.js';

/** The run's parameters (the original's command line, its sleep seconds and threads aside). */
export interface LarsonParameters {
  /** Smallest and largest-plus-one block size: sizes are `minSize + lran2() % (maxSize - minSize)`. */
  readonly minSize: number;
  readonly maxSize: number;
  /** Chunks in each thread's array. */
  readonly chunksPerThread: number;
  /** A generation is `rounds x chunksPerThread` free+malloc operations on one array. */
  readonly rounds: number;
  /** Seeds the generator that seeds each array's generator. */
  readonly seed: number;
}

/** mimalloc-bench's `larson 5 8 1000 5000 100 4141 N`: 5 s, sizes 8..1000, 5000 chunks, 100 rounds, seed 4141. */
export const LARSON_PARAMETERS: LarsonParameters = { minSize: 8, maxSize: 1000, chunksPerThread: 5000, rounds: 100, seed: 4141 };

/**
 * The run's shared state, in 32-bit words (`Int32Array`; the slots are also read as
 * `Uint32Array`, the counters as `Float64Array`):
 *
 *   word 0  CHUNKS         \
 *   word 1  ROUNDS          | the parameters, written by `larsonRunState`
 *   word 2  MIN_SIZE        |
 *   word 3  MAX_SIZE       /
 *   word 4  THREADS        threads of the run, and arrays: one per thread
 *   word 5  ACTIVE         threads that have not left their loop (THREADS at first)
 *   word 6  READY          threads past their warm-up (or failed before it ended)
 *   word 7  POOL_CHANGES   bumped and notified when an array is released or a thread leaves
 *   words 8..15            unused
 *   words 16..             per thread, STAT_FIELDS float64 counters (see `LarsonThreadStats`)
 *   then, per array, ARRAY_HEADER_WORDS + 2 x CHUNKS words:
 *     +0  HOLDER        thread holding it, or FREE (in the pool)
 *     +1  LAST_HOLDER   thread that released it last, or NO_THREAD
 *     +2  generator state (LRAN2_STATE_WORDS)
 *     +ARRAY_HEADER_WORDS            slots: CHUNKS block addresses
 *     +ARRAY_HEADER_WORDS + CHUNKS   owners: the thread that allocated each slot's block
 *                                    (kept up to date in verify mode only, see `runOps`)
 */
const CHUNKS = 0;
const ROUNDS = 1;
const MIN_SIZE = 2;
const MAX_SIZE = 3;
const THREADS = 4;
const ACTIVE = 5;
const READY = 6;
const POOL_CHANGES = 7;
const HEADER_WORDS = 16;
/** Float64 counters per thread, in this order. */
const STAT_OPS = 0;
const STAT_REMOTE_FREES = 1;
const STAT_TAKEOVERS = 2;
const STAT_GENERATIONS = 3;
const STAT_WAIT_SECONDS = 4;
const STAT_FIELDS = 5;
/** Offsets within an array's header. */
const HOLDER = 0;
const LAST_HOLDER = 1;
const GENERATOR = 2;
/** The header rounded up to a multiple of 8 words. */
const ARRAY_HEADER_WORDS = (GENERATOR + LRAN2_STATE_WORDS + 7) & ~7;
/** HOLDER of an array in the pool. */
const FREE = -1;
/** LAST_HOLDER of an array nobody released yet; also "holds no array". */
const NO_THREAD = -1;

/** Free+malloc operations between two reads of the stop flag and the clock. */
const BATCH_OPS = 1024;
/** Longest single wait, in ms, before the limits are read again. */
const WAIT_SLICE_MS = 5;
/** The two bytes the original writes into every new block ('a', 'b'). */
const FIRST_BYTE = 0x61;
const SECOND_BYTE = 0x62;
/** The smallest size verify mode accepts: it stamps bytes 4..7 of each block. */
const VERIFY_MIN_SIZE = 8;

/** Where things are in a run's state. */
class Layout {
  readonly chunks: number;
  readonly rounds: number;
  readonly minSize: number;
  readonly range: number;
  readonly threads: number;
  readonly arraysAt: number;
  readonly arrayWords: number;

  constructor(words: Int32Array) {
    this.chunks = words[CHUNKS]!;
    this.rounds = words[ROUNDS]!;
    this.minSize = words[MIN_SIZE]!;
    this.range = words[MAX_SIZE]! - this.minSize;
    this.threads = words[THREADS]!;
    this.arraysAt = HEADER_WORDS + this.threads * STAT_FIELDS * 2;
    this.arrayWords = ARRAY_HEADER_WORDS + 2 * this.chunks;
  }

  arrayAt(array: number): number {
    return this.arraysAt + array * this.arrayWords;
  }

  slotsAt(array: number): number {
    return this.arrayAt(array) + ARRAY_HEADER_WORDS;
  }

  ownersAt(array: number): number {
    return this.slotsAt(array) + this.chunks;
  }

  /** Index into a Float64Array over the state. */
  statAt(thread: number, field: number): number {
    return HEADER_WORDS / 2 + thread * STAT_FIELDS + field;
  }
}

/**
 * A fresh state for a run of `threads` threads: array `a` held by thread `a`, which warms
 * it up; each array's generator seeded, as the original seeds each thread's, by a draw of
 * a generator seeded with `parameters.seed`.
 * @throws Error for parameters the loop cannot run
 */
export function larsonRunState(threads: number, parameters: LarsonParameters = LARSON_PARAMETERS): SharedArrayBuffer {
  const { minSize, maxSize, chunksPerThread, rounds, seed } = parameters;
  if (minSize < VERIFY_MIN_SIZE || maxSize <= minSize || chunksPerThread < 1 || rounds < 1 || threads < 1) {
    throw new Error(`larson: bad parameters ${JSON.stringify({ ...parameters, threads })}`);
  }
  const probe = new Int32Array(HEADER_WORDS);
  probe[CHUNKS] = chunksPerThread;
  probe[THREADS] = threads;
  const layout = new Layout(probe);
  const buffer = new SharedArrayBuffer(layout.arrayAt(threads) * 4);
  const words = new Int32Array(buffer);
  words[CHUNKS] = chunksPerThread;
  words[ROUNDS] = rounds;
  words[MIN_SIZE] = minSize;
  words[MAX_SIZE] = maxSize;
  words[THREADS] = threads;
  words[ACTIVE] = threads;
  const main = new Lran2(seed);
  for (let array = 0; array < threads; array++) {
    const at = layout.arrayAt(array);
    words[at + HOLDER] = array;
    words[at + LAST_HOLDER] = NO_THREAD;
    new Lran2(main.next()).save(words, at + GENERATOR);
  }
  return buffer;
}

/** One thread's counters after a run. */
export interface LarsonThreadStats {
  /** Free+malloc operations timed (the warm-up's are not counted). */
  ops: number;
  /** Frees of blocks another thread allocated: counted in verify mode only (see `runOps`). */
  remoteFrees: number;
  /** Generations begun on an array another thread released (the first one included). */
  takeovers: number;
  /** Generations completed. */
  generations: number;
  /** Seconds spent waiting for an array (in the timed part). */
  waitSeconds: number;
}

/** Each thread's counters, from a run's state. */
export function readLarsonStats(state: SharedArrayBuffer): LarsonThreadStats[] {
  const words = new Int32Array(state);
  const layout = new Layout(words);
  const stats = new Float64Array(state);
  return Array.from({ length: layout.threads }, (_, thread) => ({
    ops: stats[layout.statAt(thread, STAT_OPS)]!,
    remoteFrees: stats[layout.statAt(thread, STAT_REMOTE_FREES)]!,
    takeovers: stats[layout.statAt(thread, STAT_TAKEOVERS)]!,
    generations: stats[layout.statAt(thread, STAT_GENERATIONS)]!,
    waitSeconds: stats[layout.statAt(thread, STAT_WAIT_SECONDS)]!,
  }));
}

/** One thread's running figures. */
class Tally {
  ops = 0;
  remoteFrees = 0;
  takeovers = 0;
  generations = 0;
  waitSeconds = 0;
  highWater = 0;
}

/** The views one thread works through. */
interface Views {
  readonly allocator: AddressAllocator;
  readonly memory: LoopMemory;
  /** The run's state as words, and as unsigned words for the slots' addresses. */
  readonly words: Int32Array;
  readonly addresses: Uint32Array;
  readonly layout: Layout;
  readonly me: number;
  readonly verify: boolean;
}

/**
 * One thread of a larson run: warms up its own array (untimed), waits for every thread to
 * be ready, hands its array over, then times operations in generations until a limit,
 * exchanging arrays between generations. The last thread out frees every block.
 * @throws Error when `malloc` returns 0, in verify mode when a block lost its bytes, or
 *   without a run state
 */
export function runLarsonLoop(allocator: AddressAllocator, memory: LoopMemory, limits: LoopLimits, thread: ThreadParams): ThreadOutcome {
  if (thread.runState === null) throw new Error('the larson loop needs its run state');
  const words = new Int32Array(thread.runState);
  const views: Views = {
    allocator,
    memory,
    words,
    addresses: new Uint32Array(thread.runState),
    layout: new Layout(words),
    me: thread.threadIndex,
    verify: thread.verify,
  };
  const { layout, me } = views;
  const random = new Lran2();
  const tally = new Tally();
  let held = me;
  let arrived = false;
  let finished = false;
  let seconds = 0;
  try {
    random.load(words, layout.arrayAt(held) + GENERATOR);
    warmUp(views, held, random, tally);
    // The run's clock starts once every thread is past its warm-up (`ThreadLoop.setsUp`).
    limits.begin?.();
    Atomics.add(words, READY, 1);
    Atomics.notify(words, READY);
    arrived = true;
    if (awaitEveryone(words, layout.threads, limits)) {
      // The original's main thread warms every array up and hands it to a new thread; here
      // the warmed arrays change hands once before the clock starts, so the first timed
      // generation already frees blocks another thread allocated.
      held = exchange(views, held, random, limits, tally);
      tally.takeovers = 0;
      tally.waitSeconds = 0;
      const started = performance.now();
      const generationOps = layout.rounds * layout.chunks;
      let left = generationOps;
      if (held !== NO_THREAD) tally.takeovers = takenFromAnother(words, layout, held, me) ? 1 : 0;
      while (held !== NO_THREAD && tally.ops < limits.maxIterations && !stopped(limits)) {
        const count = Math.min(BATCH_OPS, left, limits.maxIterations - tally.ops);
        runOps(views, held, random, tally, count);
        tally.ops += count;
        left -= count;
        if (left > 0) continue;
        tally.generations++;
        left = generationOps;
        // A thread at its end hands nothing over: its array goes back to the pool below.
        if (tally.ops >= limits.maxIterations || stopped(limits)) break;
        held = exchange(views, held, random, limits, tally);
        if (held !== NO_THREAD && takenFromAnother(words, layout, held, me)) tally.takeovers++;
      }
      seconds = (performance.now() - started) / 1000;
    }
    if (held !== NO_THREAD) release(views, held, random);
    finished = true;
  } finally {
    // Even a failed thread must not leave the others waiting for it.
    if (!arrived) {
      Atomics.add(words, READY, 1);
      Atomics.notify(words, READY);
    }
    writeStats(thread.runState, layout, me, tally);
    leave(views, finished && thread.leaveLive !== true);
  }
  return { iterations: tally.ops, seconds, highWater: tally.highWater };
}

/** True when the stop flag is up or the deadline passed. */
function stopped(limits: LoopLimits): boolean {
  return Atomics.load(limits.stop, 0) !== 0 || performance.now() >= limits.deadline;
}

/** Waits until every thread is past its warm-up; false when a limit came first. */
function awaitEveryone(words: Int32Array, threads: number, limits: LoopLimits): boolean {
  for (;;) {
    const ready = Atomics.load(words, READY);
    if (ready >= threads) return true;
    if (stopped(limits)) return false;
    Atomics.wait(words, READY, ready, WAIT_SLICE_MS);
  }
}

/** Whether `array`, just taken, was last released by another thread. */
function takenFromAnother(words: Int32Array, layout: Layout, array: number, me: number): boolean {
  const last = words[layout.arrayAt(array) + LAST_HOLDER]!;
  return last !== NO_THREAD && last !== me;
}

/**
 * As the original's warm-up, for one array: allocates its chunks, shuffles them (so that
 * neighbouring slots are not neighbouring blocks), then churns `4 x chunks` operations.
 */
function warmUp(views: Views, array: number, random: Lran2, tally: Tally): void {
  const { allocator, addresses, words, layout, me } = views;
  const { chunks, minSize, range } = layout;
  const slotsAt = layout.slotsAt(array);
  const ownersAt = layout.ownersAt(array);
  for (let slot = 0; slot < chunks; slot++) {
    const size = minSize + (random.next() % range);
    const block = allocator.malloc(size);
    if (block === 0) throw new Error(`malloc(${size}) returned 0 in the warm-up: the heap is full`);
    addresses[slotsAt + slot] = block;
    words[ownersAt + slot] = me;
    touch(views, block, size, slotsAt + slot, tally);
  }
  for (let remaining = chunks; remaining > 0; remaining--) {
    const victim = random.next() % remaining;
    const swap = addresses[slotsAt + victim]!;
    addresses[slotsAt + victim] = addresses[slotsAt + remaining - 1]!;
    addresses[slotsAt + remaining - 1] = swap;
  }
  // The verify stamp names the slot, and the shuffle moved blocks between slots.
  if (views.verify) for (let slot = 0; slot < chunks; slot++) stamp(views.memory, addresses[slotsAt + slot]!, slotsAt + slot);
  runOps(views, array, random, tally, 4 * chunks);
}

/**
 * `count` operations on `array`: free a random slot's block, allocate a random size in its
 * place, write its first two bytes. In verify mode it also checks each block, and keeps each
 * slot's owner to count the frees of blocks another thread allocated: a load and a store
 * per operation that the C loop does not make (3 to 5 % of mimalloc's operation, measured),
 * so a timed run without `--verify` leaves them out and counts no remote frees.
 */
function runOps(views: Views, array: number, random: Lran2, tally: Tally, count: number): void {
  const { allocator, memory, addresses, words, layout, me, verify } = views;
  const { chunks, minSize, range } = layout;
  const slotsAt = layout.slotsAt(array);
  const ownersAt = layout.ownersAt(array);
  const u8 = memory.u8;
  let remoteFrees = 0;
  let highWater = tally.highWater;
  for (let i = 0; i < count; i++) {
    const victim = random.next() % chunks;
    const at = slotsAt + victim;
    const held = addresses[at]!;
    if (verify) {
      verifyBlock(memory, held, at);
      if (words[ownersAt + victim] !== me) remoteFrees++;
    }
    allocator.free(held);
    const size = minSize + (random.next() % range);
    const block = allocator.malloc(size);
    if (block === 0) throw new Error(`malloc(${size}) returned 0 after ${tally.ops + i} operations: the heap is full`);
    addresses[at] = block;
    u8[block] = FIRST_BYTE;
    u8[block + 1] = SECOND_BYTE;
    if (verify) {
      words[ownersAt + victim] = me;
      stamp(memory, block, at);
    }
    const end = block + size;
    if (end > highWater) highWater = end;
  }
  tally.remoteFrees += remoteFrees;
  tally.highWater = highWater;
}

/** The two bytes of a new block, and its stamp in verify mode (warm-up allocations). */
function touch(views: Views, block: number, size: number, at: number, tally: Tally): void {
  views.memory.u8[block] = FIRST_BYTE;
  views.memory.u8[block + 1] = SECOND_BYTE;
  if (views.verify) stamp(views.memory, block, at);
  if (block + size > tally.highWater) tally.highWater = block + size;
}

/** Verify mode: bytes 4..7 of a block hold the state word index of its slot. */
function stamp(memory: LoopMemory, block: number, at: number): void {
  memory.u32[(block >>> 2) + 1] = at;
}

/**
 * Checks a block's two bytes and its stamp before it is freed.
 * @throws Error naming the slot and what was found
 */
function verifyBlock(memory: LoopMemory, block: number, at: number): void {
  const first = memory.u8[block];
  const second = memory.u8[block + 1];
  const found = memory.u32[(block >>> 2) + 1];
  if (first !== FIRST_BYTE || second !== SECOND_BYTE || found !== at) {
    throw new Error(
      `verify: the block of slot word ${at} at 0x${block.toString(16)} holds ${first}, ${second}, stamp ${found}: ` +
        'another allocation overlapped it, or it was freed twice',
    );
  }
}

/** Puts `array` in the pool, its generator saved with it. */
function release(views: Views, array: number, random: Lran2): void {
  const { words, layout, me } = views;
  const at = layout.arrayAt(array);
  random.save(words, at + GENERATOR);
  Atomics.store(words, at + LAST_HOLDER, me);
  Atomics.store(words, at + HOLDER, FREE);
  Atomics.add(words, POOL_CHANGES, 1);
  Atomics.notify(words, POOL_CHANGES);
}

/**
 * Releases `held` and takes another thread's array from the pool, waiting (in bounded
 * slices) until one is there. Takes back one it released itself only when no other thread
 * is left to hand one over (one thread; or the others gone, and every array in the pool
 * last released by this one). The wait is counted in `tally.waitSeconds`.
 * @returns the array taken, or NO_THREAD when a limit came first (then it holds none)
 */
function exchange(views: Views, held: number, random: Lran2, limits: LoopLimits, tally: Tally): number {
  const { words, layout, me } = views;
  release(views, held, random);
  const started = performance.now();
  for (;;) {
    const seen = Atomics.load(words, POOL_CHANGES);
    let taken = claim(words, layout, held, me, false);
    if (taken === NO_THREAD && Atomics.load(words, ACTIVE) <= 1) taken = claim(words, layout, held, me, true);
    if (taken !== NO_THREAD) {
      random.load(words, layout.arrayAt(taken) + GENERATOR);
      tally.waitSeconds += (performance.now() - started) / 1000;
      return taken;
    }
    if (stopped(limits)) {
      tally.waitSeconds += (performance.now() - started) / 1000;
      return NO_THREAD;
    }
    Atomics.wait(words, POOL_CHANGES, seen, WAIT_SLICE_MS);
  }
}

/**
 * Takes an array from the pool, looking from the one after `held` round to `held` itself;
 * one this thread released last only when `ownToo`.
 * @returns the array taken, or NO_THREAD
 */
function claim(words: Int32Array, layout: Layout, held: number, me: number, ownToo: boolean): number {
  for (let step = 1; step <= layout.threads; step++) {
    const array = (held + step) % layout.threads;
    const at = layout.arrayAt(array);
    if (Atomics.load(words, at + HOLDER) !== FREE) continue;
    if (!ownToo && Atomics.load(words, at + LAST_HOLDER) === me) continue;
    if (Atomics.compareExchange(words, at + HOLDER, FREE, me) === FREE) return array;
  }
  return NO_THREAD;
}

/**
 * Leaves the run: one thread fewer, waiters woken to see it. The last thread out frees
 * every block of every array in the pool (not timed; none is held by then, unless a thread
 * failed, and then the run fails anyway), when `freeAll` (false also under `leaveLive`).
 */
function leave(views: Views, freeAll: boolean): void {
  const { words, layout, allocator } = views;
  const before = Atomics.sub(words, ACTIVE, 1);
  Atomics.add(words, POOL_CHANGES, 1);
  Atomics.notify(words, POOL_CHANGES);
  if (before !== 1 || !freeAll) return;
  for (let array = 0; array < layout.threads; array++) {
    if (Atomics.load(words, layout.arrayAt(array) + HOLDER) !== FREE) continue;
    const slotsAt = layout.slotsAt(array);
    for (let slot = 0; slot < layout.chunks; slot++) {
      const block = views.addresses[slotsAt + slot]!;
      if (block === 0) continue;
      if (views.verify) verifyBlock(views.memory, block, slotsAt + slot);
      allocator.free(block);
      views.addresses[slotsAt + slot] = 0;
    }
  }
}

function writeStats(state: SharedArrayBuffer, layout: Layout, me: number, tally: Tally): void {
  const stats = new Float64Array(state);
  stats[layout.statAt(me, STAT_OPS)] = tally.ops;
  stats[layout.statAt(me, STAT_REMOTE_FREES)] = tally.remoteFrees;
  stats[layout.statAt(me, STAT_TAKEOVERS)] = tally.takeovers;
  stats[layout.statAt(me, STAT_GENERATIONS)] = tally.generations;
  stats[layout.statAt(me, STAT_WAIT_SECONDS)] = tally.waitSeconds;
}
