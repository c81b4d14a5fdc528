/**
 * The xmalloc-test loop (docs/workloads/xmalloc-test.md): Lever and Boreham's
 * producer/consumer test, over any allocator whose blocks are byte offsets into one buffer.
 *
 * Producers allocate batches of objects and push them on a bounded stack; consumers pop
 * batches and free every object, so every free the consumers make is of a block another
 * thread allocated. The stack, its lock and the run's counters live in
 * `ThreadParams.runState`; a batch itself is a heap block holding its objects' addresses,
 * as the original's batch is a malloc'd array of pointers.
 *
 * Roles: with one thread, it produces a batch and consumes it, in turn; with more, even
 * thread indexes produce and odd ones consume. Every wait is bounded and gives up when the
 * other side has left, so a thread never waits for one that ended; the last thread out
 * frees what is left on the stack.
 */

import type { AddressAllocator, LoopLimits, LoopMemory } from '../../run/address-allocator.js';
import type { ThreadOutcome, ThreadParams } from '../../run/thread-loop.js';
import { fillBytes, verifyFill } from '../glibc-thread/loop.js';

/** The run's parameters. */
export interface XmallocParameters {
  /** Bytes of each object (the original's `-s`). */
  readonly objectSize: number;
  /** Objects per batch. */
  readonly batchObjects: number;
  /** Batches the stack holds at most; a producer waits for room beyond. */
  readonly stackLimit: number;
}

/** mimalloc-bench's `xmalloc-test -w N -t 5 -s 64`, and the original's batches of 4096 objects, 100 batches at most. */
export const XMALLOC_PARAMETERS: XmallocParameters = { objectSize: 64, batchObjects: 4096, stackLimit: 100 };

/** The original fills the first 128 bytes of each object at most. */
const FILL_LIMIT = 128;

/**
 * The run's shared state, in 32-bit words (`Int32Array`; the stack is also read as
 * `Uint32Array`, the counters as `Float64Array`):
 *
 *   word 0  OBJECT_SIZE    \
 *   word 1  BATCH_OBJECTS   | the parameters, written by `xmallocRunState`
 *   word 2  STACK_LIMIT    /
 *   word 3  THREADS
 *   word 4  LOCK           0 free, 1 held: guards DEPTH and the stack
 *   word 5  DEPTH          batches on the stack
 *   word 6  PUSHES         bumped and notified by each push, and when a thread leaves: consumers wait on it
 *   word 7  POPS           bumped and notified by each pop, and when a thread leaves: producers wait on it
 *   word 8  ACTIVE         threads not yet out of their loop (THREADS at first)
 *   word 9  PRODUCERS      producing threads not yet out
 *   word 10 CONSUMERS      consuming threads not yet out
 *   word 11 READY          threads at the start line
 *   word 12 DRAINED        batches the last thread out freed from the stack
 *   word 13 UNPUSHED       batches producers freed themselves (no room, and no consumer left or a limit)
 *   words 14..15           unused
 *   words 16..             per thread, STAT_FIELDS float64 counters (see `XmallocThreadStats`)
 *   then STACK_LIMIT words: the stack of batch addresses, bottom first
 *
 * A batch block: word 0 the producing thread's index, then BATCH_OBJECTS object addresses.
 */
const OBJECT_SIZE = 0;
const BATCH_OBJECTS = 1;
const STACK_LIMIT = 2;
const THREADS = 3;
const LOCK = 4;
const DEPTH = 5;
const PUSHES = 6;
const POPS = 7;
const ACTIVE = 8;
const PRODUCERS = 9;
const CONSUMERS = 10;
const READY = 11;
const DRAINED = 12;
const UNPUSHED = 13;
const HEADER_WORDS = 16;
/** Float64 counters per thread, in this order. */
const STAT_FREES = 0;
const STAT_REMOTE_FREES = 1;
const STAT_ALLOCATED = 2;
const STAT_WAIT_SECONDS = 3;
const STAT_FIELDS = 4;
/** Words of a batch block before its object addresses. */
const BATCH_HEADER_WORDS = 1;

/** Longest single wait, in ms, before the limits and the other side are read again. */
const WAIT_SLICE_MS = 5;
/** Longest wait for the lock, in ms; it is held for a few stores, never across a wait. */
const LOCK_WAIT_MS = 1;

/** What a thread does. */
export type XmallocRole = 'producer' | 'consumer' | 'both';

/** Thread `threadIndex`'s role in a run of `threads`. */
export function xmallocRole(threadIndex: number, threads: number): XmallocRole {
  if (threads === 1) return 'both';
  return threadIndex % 2 === 0 ? 'producer' : 'consumer';
}

/** Where things are in a run's state. */
class Layout {
  readonly objectSize: number;
  readonly fillSize: number;
  readonly batchObjects: number;
  readonly stackLimit: number;
  readonly threads: number;
  readonly stackAt: number;

  constructor(words: Int32Array) {
    this.objectSize = words[OBJECT_SIZE]!;
    this.fillSize = Math.min(this.objectSize, FILL_LIMIT);
    this.batchObjects = words[BATCH_OBJECTS]!;
    this.stackLimit = words[STACK_LIMIT]!;
    this.threads = words[THREADS]!;
    this.stackAt = HEADER_WORDS + this.threads * STAT_FIELDS * 2;
  }

  /** Index into a Float64Array over the state. */
  statAt(thread: number, field: number): number {
    return HEADER_WORDS / 2 + thread * STAT_FIELDS + field;
  }
}

/**
 * A fresh state for a run of `threads` threads: the stack empty, every thread counted in.
 * @throws Error for parameters the loop cannot run
 */
export function xmallocRunState(threads: number, parameters: XmallocParameters = XMALLOC_PARAMETERS): SharedArrayBuffer {
  const { objectSize, batchObjects, stackLimit } = parameters;
  if (objectSize < 1 || batchObjects < 1 || stackLimit < 1 || threads < 1) {
    throw new Error(`xmalloc-test: bad parameters ${JSON.stringify({ ...parameters, threads })}`);
  }
  const probe = new Int32Array(HEADER_WORDS);
  probe[THREADS] = threads;
  const buffer = new SharedArrayBuffer((new Layout(probe).stackAt + stackLimit) * 4);
  const words = new Int32Array(buffer);
  words[OBJECT_SIZE] = objectSize;
  words[BATCH_OBJECTS] = batchObjects;
  words[STACK_LIMIT] = stackLimit;
  words[THREADS] = threads;
  words[ACTIVE] = threads;
  const roles = Array.from({ length: threads }, (_, index) => xmallocRole(index, threads));
  words[PRODUCERS] = roles.filter((role) => role !== 'consumer').length;
  words[CONSUMERS] = roles.filter((role) => role !== 'producer').length;
  return buffer;
}

/** One thread's counters after a run. */
export interface XmallocThreadStats {
  role: XmallocRole;
  /** Objects freed in the timed loop (what the original counts). */
  frees: number;
  /** Of those, objects another thread allocated. */
  remoteFrees: number;
  /** Objects allocated. */
  allocated: number;
  /** Seconds spent waiting for a batch or for room on the stack (in the timed part). */
  waitSeconds: number;
}

/** Each thread's counters and what was freed after the loops, from a run's state. */
export function readXmallocStats(state: SharedArrayBuffer): { threads: XmallocThreadStats[]; drainedBatches: number; unpushedBatches: number } {
  const words = new Int32Array(state);
  const layout = new Layout(words);
  const stats = new Float64Array(state);
  return {
    threads: Array.from({ length: layout.threads }, (_, thread) => ({
      role: xmallocRole(thread, layout.threads),
      frees: stats[layout.statAt(thread, STAT_FREES)]!,
      remoteFrees: stats[layout.statAt(thread, STAT_REMOTE_FREES)]!,
      allocated: stats[layout.statAt(thread, STAT_ALLOCATED)]!,
      waitSeconds: stats[layout.statAt(thread, STAT_WAIT_SECONDS)]!,
    })),
    drainedBatches: words[DRAINED]!,
    unpushedBatches: words[UNPUSHED]!,
  };
}

/** The stack as a run goes, read by a watcher while the threads run (plain reads: a sample may be a moment stale). */
export interface XmallocProgress {
  /** Batches on the stack. */
  depth: number;
  /** Pushes and pops so far (each also bumped once by every thread that left). */
  pushes: number;
  pops: number;
}

/** The stack's depth and its push and pop counts now, from a run's state. */
export function readXmallocProgress(state: SharedArrayBuffer): XmallocProgress {
  const words = new Int32Array(state);
  return { depth: words[DEPTH]!, pushes: words[PUSHES]!, pops: words[POPS]! };
}

/** One thread's running figures. */
class Tally {
  frees = 0;
  remoteFrees = 0;
  allocated = 0;
  waitSeconds = 0;
  highWater = 0;
}

/** What one thread works with. */
interface Views {
  readonly allocator: AddressAllocator;
  readonly memory: LoopMemory;
  readonly words: Int32Array;
  readonly stack: Uint32Array;
  readonly layout: Layout;
  readonly me: number;
  readonly verify: boolean;
  readonly limits: LoopLimits;
}

/**
 * One thread of an xmalloc-test run: waits for every thread at the start line, then
 * produces, consumes or both (see `xmallocRole`) until a limit: `maxIterations` counts a
 * producer's allocations and a consumer's frees. The outcome counts frees only, as the
 * original does, so a producer's is 0.
 * @throws Error when `malloc` returns 0, in verify mode when an object lost its fill, or
 *   without a run state
 */
export function runXmallocLoop(allocator: AddressAllocator, memory: LoopMemory, limits: LoopLimits, thread: ThreadParams): ThreadOutcome {
  if (thread.runState === null) throw new Error('the xmalloc-test loop needs its run state');
  const words = new Int32Array(thread.runState);
  const layout = new Layout(words);
  const views: Views = {
    allocator,
    memory,
    words,
    stack: new Uint32Array(thread.runState),
    layout,
    me: thread.threadIndex,
    verify: thread.verify,
    limits,
  };
  const role = xmallocRole(thread.threadIndex, layout.threads);
  const tally = new Tally();
  let finished = false;
  let seconds = 0;
  try {
    Atomics.add(words, READY, 1);
    Atomics.notify(words, READY);
    if (awaitEveryone(views)) {
      const started = performance.now();
      if (role === 'producer') produce(views, tally);
      else if (role === 'consumer') consume(views, tally);
      else alternate(views, tally);
      seconds = (performance.now() - started) / 1000;
    }
    finished = true;
  } finally {
    writeStats(thread.runState, layout, views.me, tally);
    leave(views, role, finished && thread.leaveLive !== true);
  }
  return { iterations: tally.frees, seconds, highWater: tally.highWater };
}

/** True when the stop flag is up or the deadline passed. */
function stopped(limits: LoopLimits): boolean {
  return Atomics.load(limits.stop, 0) !== 0 || performance.now() >= limits.deadline;
}

/** Waits until every thread is at the start line, so no side's clock runs while the other starts up; false when a limit came first. */
function awaitEveryone(views: Views): boolean {
  const { words, layout, limits } = views;
  for (;;) {
    const ready = Atomics.load(words, READY);
    if (ready >= layout.threads) return true;
    if (stopped(limits)) return false;
    Atomics.wait(words, READY, ready, WAIT_SLICE_MS);
  }
}

/** A producer: batch after batch onto the stack, until a limit or no consumer is left. */
function produce(views: Views, tally: Tally): void {
  const { limits } = views;
  while (tally.allocated < limits.maxIterations && !stopped(limits)) {
    const batch = makeBatch(views, tally);
    if (!push(views, batch, tally)) {
      freeBatch(views, batch);
      Atomics.add(views.words, UNPUSHED, 1);
      return;
    }
  }
}

/** A consumer: batch after batch off the stack, until a limit or no producer (and no batch) is left. */
function consume(views: Views, tally: Tally): void {
  const { limits } = views;
  while (tally.frees < limits.maxIterations && !stopped(limits)) {
    const batch = pop(views, tally);
    if (batch === 0) return;
    consumeBatch(views, batch, tally);
  }
}

/** One thread alone: makes a batch, passes it through the stack and frees it, in turn. */
function alternate(views: Views, tally: Tally): void {
  const { limits } = views;
  while (tally.frees < limits.maxIterations && !stopped(limits)) {
    const made = makeBatch(views, tally);
    if (!push(views, made, tally)) {
      freeBatch(views, made);
      Atomics.add(views.words, UNPUSHED, 1);
      return;
    }
    const batch = pop(views, tally);
    if (batch === 0) return;
    consumeBatch(views, batch, tally);
  }
}

/**
 * Allocates a batch block and its objects, filling each object's first bytes (up to 128)
 * with its index's low byte, as the original's memset does.
 * @throws Error when `malloc` returns 0
 */
function makeBatch(views: Views, tally: Tally): number {
  const { allocator, memory, layout, me } = views;
  const { batchObjects, objectSize, fillSize } = layout;
  const batchBytes = (BATCH_HEADER_WORDS + batchObjects) * 4;
  const batch = allocator.malloc(batchBytes);
  if (batch === 0) throw new Error(`malloc(${batchBytes}) for a batch returned 0: the heap is full`);
  const u32 = memory.u32;
  const first = (batch >>> 2) + BATCH_HEADER_WORDS;
  u32[batch >>> 2] = me;
  let highWater = Math.max(tally.highWater, batch + batchBytes);
  for (let i = 0; i < batchObjects; i++) {
    const object = allocator.malloc(objectSize);
    if (object === 0) {
      for (let j = 0; j < i; j++) allocator.free(u32[first + j]!);
      allocator.free(batch);
      throw new Error(`malloc(${objectSize}) returned 0 after ${tally.allocated + i} objects: the heap is full`);
    }
    u32[first + i] = object;
    fillBytes(memory, object, fillSize, i & 0xff);
    if (object + objectSize > highWater) highWater = object + objectSize;
  }
  tally.allocated += batchObjects;
  tally.highWater = highWater;
  return batch;
}

/** Frees a batch's objects (checking each one's fill in verify mode), then the batch block. */
function freeBatch(views: Views, batch: number): void {
  const { allocator, memory, layout, verify } = views;
  const first = (batch >>> 2) + BATCH_HEADER_WORDS;
  for (let i = 0; i < layout.batchObjects; i++) {
    const object = memory.u32[first + i]!;
    if (verify) verifyFill(memory.u8, memory.u32, object, layout.fillSize, i & 0xff, i);
    allocator.free(object);
  }
  allocator.free(batch);
}

/** A consumer's share of a batch: frees it and counts its objects, as remote when another thread made them. */
function consumeBatch(views: Views, batch: number, tally: Tally): void {
  const producer = views.memory.u32[batch >>> 2]!;
  freeBatch(views, batch);
  tally.frees += views.layout.batchObjects;
  if (producer !== views.me) tally.remoteFrees += views.layout.batchObjects;
}

function lock(words: Int32Array): void {
  while (Atomics.compareExchange(words, LOCK, 0, 1) !== 0) Atomics.wait(words, LOCK, 1, LOCK_WAIT_MS);
}

function unlock(words: Int32Array): void {
  Atomics.store(words, LOCK, 0);
  Atomics.notify(words, LOCK, 1);
}

/**
 * Pushes `batch`, waiting in bounded slices while the stack is full.
 * @returns false, the batch not pushed, when a limit came or no consumer is left to make room
 */
function push(views: Views, batch: number, tally: Tally): boolean {
  const { words, stack, layout, limits } = views;
  let waitStarted = 0;
  for (;;) {
    // Read before the stack: a consumer that leaves after this read has popped what it will.
    const consumers = Atomics.load(words, CONSUMERS);
    lock(words);
    const depth = words[DEPTH]!;
    if (depth < layout.stackLimit) {
      stack[layout.stackAt + depth] = batch;
      words[DEPTH] = depth + 1;
      Atomics.add(words, PUSHES, 1);
      unlock(words);
      Atomics.notify(words, PUSHES);
      if (waitStarted !== 0) tally.waitSeconds += (performance.now() - waitStarted) / 1000;
      return true;
    }
    const seen = Atomics.load(words, POPS);
    unlock(words);
    if (waitStarted === 0) waitStarted = performance.now();
    if (consumers === 0 || stopped(limits)) {
      tally.waitSeconds += (performance.now() - waitStarted) / 1000;
      return false;
    }
    Atomics.wait(words, POPS, seen, WAIT_SLICE_MS);
  }
}

/**
 * Pops the newest batch (the original's stack is LIFO), waiting in bounded slices while the
 * stack is empty.
 * @returns the batch, or 0 when a limit came or no producer is left and the stack is empty
 */
function pop(views: Views, tally: Tally): number {
  const { words, stack, layout, limits } = views;
  let waitStarted = 0;
  for (;;) {
    // Read before the stack: a producer that leaves after this read pushed all it will.
    const producers = Atomics.load(words, PRODUCERS);
    lock(words);
    const depth = words[DEPTH]!;
    if (depth > 0) {
      const batch = stack[layout.stackAt + depth - 1]!;
      words[DEPTH] = depth - 1;
      Atomics.add(words, POPS, 1);
      unlock(words);
      Atomics.notify(words, POPS);
      if (waitStarted !== 0) tally.waitSeconds += (performance.now() - waitStarted) / 1000;
      return batch;
    }
    const seen = Atomics.load(words, PUSHES);
    unlock(words);
    if (waitStarted === 0) waitStarted = performance.now();
    if (producers === 0 || stopped(limits)) {
      tally.waitSeconds += (performance.now() - waitStarted) / 1000;
      return 0;
    }
    Atomics.wait(words, PUSHES, seen, WAIT_SLICE_MS);
  }
}

/**
 * Leaves the run: counted out of its role and of the run, waiters woken to see it. The last
 * thread out frees every batch left on the stack (not timed, not counted).
 */
function leave(views: Views, role: XmallocRole, finished: boolean): void {
  const { words, stack, layout } = views;
  if (role !== 'consumer') Atomics.sub(words, PRODUCERS, 1);
  if (role !== 'producer') Atomics.sub(words, CONSUMERS, 1);
  const before = Atomics.sub(words, ACTIVE, 1);
  for (const word of [PUSHES, POPS]) {
    Atomics.add(words, word, 1);
    Atomics.notify(words, word);
  }
  if (before !== 1 || !finished) return;
  lock(words);
  while (words[DEPTH]! > 0) {
    const depth = words[DEPTH]! - 1;
    words[DEPTH] = depth;
    freeBatch(views, stack[layout.stackAt + depth]!);
    words[DRAINED] = words[DRAINED]! + 1;
  }
  unlock(words);
}

function writeStats(state: SharedArrayBuffer, layout: Layout, me: number, tally: Tally): void {
  const stats = new Float64Array(state);
  stats[layout.statAt(me, STAT_FREES)] = tally.frees;
  stats[layout.statAt(me, STAT_REMOTE_FREES)] = tally.remoteFrees;
  stats[layout.statAt(me, STAT_ALLOCATED)] = tally.allocated;
  stats[layout.statAt(me, STAT_WAIT_SECONDS)] = tally.waitSeconds;
}
