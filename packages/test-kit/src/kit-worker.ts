/**
 * The worker side of the multi-worker harness. Each message names a task; the worker
 * attaches to the task's heap (finding the backend from the heap itself), runs the task,
 * detaches and replies. Blocks are signed and verified before every free, so lost updates,
 * overlaps and cross-thread corruption surface as errors naming the block.
 */

import { AllocError, GlobalAllocator, LockIndex, type LockStep, MIN_ALIGN, park, SharedHeap, type ThreadCacheStep } from '@heaplab/core';
import { forgetCacheOwner } from '@heaplab/core/internal';

import { makeBackendContext } from './backend-context.js';
import { contextOver, dyingMemory } from './dying-memory.js';
import { Random, SIGNATURE_BYTES, signBlock, verifyBlock, type Signature } from './patterns.js';
import { serveTasks, type TaskReply } from './task-protocol.js';

/** Allocate, write, verify and free on one heap; optionally swap blocks with other workers. */
export interface ChurnTask {
  kind: 'churn';
  buffer: SharedArrayBuffer;
  seed: number;
  iterations: number;
  /** Blocks held at once. */
  slots: number;
  maxSize: number;
  /**
   * Transfer slots shared by the workers (a `Uint32Array` of addresses, 0 = empty): blocks
   * put there are verified and freed by whichever worker takes them (cross-thread free).
   */
  mailbox?: SharedArrayBuffer;
  /** Backend modules the worker may import to attach (a backend from outside heaplab). */
  trustModules?: string[];
}

/** Increment a plain word in the heap under one of the heap's shared locks. */
export interface MutexTask {
  kind: 'mutex';
  buffer: SharedArrayBuffer;
  lockIndex: number;
  iterations: number;
  /** Address of a 4-byte counter in the heap. */
  counterAddress: number;
}

/**
 * Take a lock and hold it. `signal` is an `Int32Array` buffer: the worker stores 1 in word 0
 * once it holds the lock; with `release-on-signal` it waits for word 1 to become non-zero,
 * then releases; with `exit-holding` it ends its thread still holding the lock.
 */
export interface HoldLockTask {
  kind: 'hold-lock';
  buffer: SharedArrayBuffer;
  lockIndex: number;
  signal: SharedArrayBuffer;
  mode: 'release-on-signal' | 'exit-holding';
}

/**
 * Attach, free `cachedBlocks` small blocks into this thread's cache, take lock `lockIndex`
 * when one is given, store 1 in word 0 of `signal`, then end the thread without detaching
 * (its cache full, holding that lock or none) once word 1 becomes non-zero: a worker that
 * dies at a moment of the test's choosing.
 */
export interface ExitOnSignalTask {
  kind: 'exit-on-signal';
  buffer: SharedArrayBuffer;
  cachedBlocks: number;
  signal: SharedArrayBuffer;
  lockIndex?: number;
}

/**
 * Take lock `outer`, store 1 in word 0 of `signal`, then take lock `inner` while holding it
 * (the nesting `addMemory` does with the pools and heap locks), and release both. Resolves
 * with `acquired` once it had both, or with the error of the inner acquisition.
 */
export interface NestedLockTask {
  kind: 'nested-lock';
  buffer: SharedArrayBuffer;
  outer: number;
  inner: number;
  signal: SharedArrayBuffer;
}

/**
 * Die inside the heap lock: take it, then run one operation of the (locked) backend over
 * views that end the thread before store number `stores` (see dying-memory.ts), so the lock
 * stays held by a dead thread and the backend's structures (and core's counters, which its
 * stores count too) are as that store left them.
 * Replies 'finished' when the operation has fewer stores (the lock is then released).
 */
export interface DieInBackendTask {
  kind: 'die-in-backend';
  buffer: SharedArrayBuffer;
  operation: 'malloc' | 'free' | 'realloc';
  /** Bytes for malloc and realloc. */
  size: number;
  /** The block freed or resized. */
  address: number;
  stores: number;
  trustModules?: string[];
}

/**
 * Die at one step of taking a lock: between the steps of a contended acquisition (the main
 * thread holds the lock meanwhile), or right after acquiring it ('acquired').
 */
export interface LockStepDeathTask {
  kind: 'lock-step-death';
  buffer: SharedArrayBuffer;
  lockIndex: number;
  step: LockStep | 'acquired';
  /** Small blocks to allocate and free (into the thread's cache) before taking the lock. */
  cachedBlocks?: number;
  trustModules?: string[];
}

/**
 * Attach, allocate `blocks` blocks of `size` bytes (kept live), and detach: with a backend
 * that dies inside `releaseThread` (a test fixture, or a hook), the thread dies partway
 * through its own `detach` and leaves its slot `releasing` for a reaper.
 */
export interface AllocateAndDetachTask {
  kind: 'allocate-and-detach';
  buffer: SharedArrayBuffer;
  blocks: number;
  size: number;
  trustModules?: string[];
}

/**
 * Attach, then allocate and free small blocks (refills, pushes, pops, flushes) until the
 * thread cache's step `step` is reached for the `nth` time, and die there (process.exit in
 * the hook): a thread killed between two steps of its cache (thread-cache.ts).
 */
export interface CacheStepDeathTask {
  kind: 'cache-step-death';
  buffer: SharedArrayBuffer;
  step: ThreadCacheStep;
  nth: number;
  /**
   * An `Int32Array` buffer of at least 64 words where the worker keeps the addresses of its
   * live blocks (0: empty; a block's word is cleared after its free returns), so the test can
   * free what the dead thread still held.
   */
  live: SharedArrayBuffer;
  /** Blocks another thread handed out, which the worker frees first (remote frees). */
  remoteFrees?: number[];
  trustModules?: string[];
}

/** Build a heap, damage one block's surroundings, and go on using it (corruption.ts). */
export interface CorruptionTrialTask {
  kind: 'corruption-trial';
  buffer: SharedArrayBuffer;
  damage: 'overflow' | 'use-after-free' | 'garbage';
  /** Bytes of damage. */
  bytes: number;
  seed: number;
  trustModules?: string[];
}

/** How a corruption trial ended, when it did not fail. */
export interface CorruptionOutcome {
  /** clean: nothing noticed and nothing harmed; refused: a free was refused as NotAllocated;
   * detected: an operation raised HeapCorrupted; detected-by-check: check() did. */
  outcome: 'clean' | 'refused' | 'detected' | 'detected-by-check';
  message: string;
}

export type KitTask =
  | { kind: 'ping' }
  | ChurnTask
  | MutexTask
  | HoldLockTask
  | ExitOnSignalTask
  | NestedLockTask
  | DieInBackendTask
  | LockStepDeathTask
  | CorruptionTrialTask
  | AllocateAndDetachTask
  | CacheStepDeathTask
  | WalkTask;

/**
 * Attach and walk the heap once (`walk()` and `classStats()`), in a worker so that a test of
 * a damaged heap can bound the walk with the pool's time limit instead of hanging on it.
 */
export interface WalkTask {
  kind: 'walk';
  buffer: SharedArrayBuffer;
  trustModules?: string[];
}

/** How a walk task ended: the regions and tables it gave, or the AllocError it raised. */
export type WalkOutcome = { outcome: 'walked'; regions: number; tables: number } | { outcome: 'error'; kind: string; message: string };

/** What a churn task did. */
export interface ChurnResult {
  allocations: number;
  frees: number;
  reallocs: number;
  /** Blocks put in the mailbox for another worker to free. */
  handedOff: number;
  /** Blocks taken from the mailbox and freed here. */
  received: number;
}

/** A kit worker's answer (the shared protocol's reply). */
export type KitReply = TaskReply;

/** Deadline for any wait on a signal from the main thread. */
const SIGNAL_WAIT_MS = 30_000;

async function churn(task: ChurnTask): Promise<ChurnResult> {
  const heap = await GlobalAllocator.attach(task.buffer, { trustModules: task.trustModules ?? [] });
  const u8 = heap.memory.u8;
  const random = new Random(task.seed);
  const mailbox = task.mailbox === undefined ? null : new Uint32Array(task.mailbox);
  const addresses = new Array<number>(task.slots).fill(0);
  const signatures = new Array<Signature | null>(task.slots).fill(null);
  const result: ChurnResult = { allocations: 0, frees: 0, reallocs: 0, handedOff: 0, received: 0 };
  let sequence = 0;

  const verifyOrThrow = (address: number, expected?: Signature): void => {
    const problem = verifyBlock(u8, address, expected);
    if (problem !== null) throw new Error(`thread ${heap.threadId}: ${problem}`);
  };

  try {
    for (let iteration = 0; iteration < task.iterations; iteration++) {
      const slot = random.int(0, task.slots);
      const held = addresses[slot]!;
      if (held !== 0 && (random.nextU32() & 7) === 0) {
        // Resize in place or move: the old contents must survive up to the smaller size.
        const signature = signatures[slot]!;
        verifyOrThrow(held, signature);
        const size = random.size(task.maxSize);
        const moved = heap.realloc(held, size);
        if (moved === 0) throw new Error(`thread ${heap.threadId}: realloc to ${size} bytes failed`);
        const kept = Math.min(signature.size, size);
        if (kept >= SIGNATURE_BYTES && signature.size >= SIGNATURE_BYTES) {
          verifyPrefix(u8, moved, signature, kept, heap.threadId);
        }
        const fresh = { writer: heap.threadId, sequence: sequence++, size };
        signBlock(u8, moved, fresh);
        addresses[slot] = moved;
        signatures[slot] = fresh;
        result.reallocs++;
        continue;
      }
      if (held !== 0) {
        verifyOrThrow(held, signatures[slot]!);
        heap.free(held);
        addresses[slot] = 0;
        result.frees++;
      }
      if (mailbox !== null && (random.nextU32() & 3) === 0) {
        const taken = Atomics.exchange(mailbox, random.int(0, mailbox.length), 0);
        if (taken !== 0) {
          verifyOrThrow(taken);
          heap.free(taken);
          result.received++;
        }
      }
      const size = random.size(task.maxSize);
      const address = heap.malloc(size);
      if (address === 0) {
        throw new Error(`thread ${heap.threadId}: malloc(${size}) returned 0 with ${heap.usedBytes()} bytes used`);
      }
      const signature = { writer: heap.threadId, sequence: sequence++, size };
      signBlock(u8, address, signature);
      result.allocations++;
      if (mailbox !== null && size >= SIGNATURE_BYTES && random.nextU32() % 3 === 0) {
        if (Atomics.compareExchange(mailbox, random.int(0, mailbox.length), 0, address) === 0) {
          result.handedOff++;
          continue;
        }
      }
      addresses[slot] = address;
      signatures[slot] = signature;
    }
    for (let slot = 0; slot < task.slots; slot++) {
      const held = addresses[slot]!;
      if (held === 0) continue;
      verifyOrThrow(held, signatures[slot]!);
      heap.free(held);
      result.frees++;
    }
  } finally {
    heap.detach();
  }
  return result;
}

function verifyPrefix(u8: Uint8Array, address: number, signature: Signature, kept: number, threadId: number): void {
  const copy = new Uint8Array(kept);
  copy.set(u8.subarray(address, address + kept));
  const scratch = new Uint8Array(signature.size);
  signBlock(scratch, 0, signature);
  for (let offset = 0; offset < kept; offset++) {
    if (copy[offset] !== scratch[offset]) {
      throw new Error(`thread ${threadId}: realloc lost byte ${offset} of the block now at ${address}`);
    }
  }
}

async function mutexTask(task: MutexTask): Promise<number> {
  const heap = await GlobalAllocator.attach(task.buffer);
  try {
    const mutex = SharedHeap.open(task.buffer).mutex(task.lockIndex, heap.threadId);
    const u32 = heap.memory.u32;
    const index = task.counterAddress >>> 2;
    for (let i = 0; i < task.iterations; i++) {
      mutex.lock();
      // A plain read-modify-write: only the lock keeps increments from being lost.
      u32[index] = u32[index]! + 1;
      mutex.unlock();
    }
    return task.iterations;
  } finally {
    heap.detach();
  }
}

async function holdLock(task: HoldLockTask): Promise<string> {
  const heap = await GlobalAllocator.attach(task.buffer);
  const mutex = SharedHeap.open(task.buffer).mutex(task.lockIndex, heap.threadId);
  const signal = new Int32Array(task.signal);
  mutex.lock();
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
  if (task.mode === 'exit-holding') process.exit(0);
  const deadline = Date.now() + SIGNAL_WAIT_MS;
  while (Atomics.load(signal, 1) === 0 && Date.now() < deadline) park(signal, 1, 0, 50);
  mutex.unlock();
  heap.detach();
  return 'released';
}

async function exitOnSignal(task: ExitOnSignalTask): Promise<never> {
  const heap = await GlobalAllocator.attach(task.buffer);
  const cached = Array.from({ length: task.cachedBlocks }, (_, i) => heap.malloc(16 + (i % 4) * 8));
  for (const address of cached) heap.free(address);
  if (task.lockIndex !== undefined) SharedHeap.open(task.buffer).mutex(task.lockIndex, heap.threadId).lock();
  const signal = new Int32Array(task.signal);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
  const deadline = Date.now() + SIGNAL_WAIT_MS;
  while (Atomics.load(signal, 1) === 0 && Date.now() < deadline) park(signal, 1, 0, 50);
  process.exit(0);
}

async function nestedLock(task: NestedLockTask): Promise<string> {
  const heap = await GlobalAllocator.attach(task.buffer);
  const shared = SharedHeap.open(task.buffer);
  const outer = shared.mutex(task.outer, heap.threadId);
  const inner = shared.mutex(task.inner, heap.threadId);
  outer.lock();
  const signal = new Int32Array(task.signal);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
  try {
    inner.lock();
    inner.unlock();
    return 'acquired';
  } finally {
    outer.unlock();
    heap.detach();
  }
}

async function dieInBackend(task: DieInBackendTask): Promise<string> {
  const heap = await GlobalAllocator.attach(task.buffer, { trustModules: task.trustModules ?? [] });
  const shared = SharedHeap.open(task.buffer);
  const descriptor = heap.backendDescriptor;
  const context = makeBackendContext({
    memory: heap.memory,
    threadId: heap.threadId,
    stateBytes: shared.backendStateBytes,
    cookie: shared.cookie,
    maxThreads: shared.maxThreads,
  });
  const views = dyingMemory(heap.memory, { stores: 0, limit: task.stores, die: () => process.exit(0) });
  // Counters included: a death may come at any store the backend makes, not only its blocks'.
  const backend = descriptor.create(contextOver(context, views), descriptor.normalizeOptions(shared.backendOptions()));
  const mutex = shared.mutex(LockIndex.heap, heap.threadId);
  // What a heap with a thread cache does before a free or resize reaches the backend: the
  // block's owner entry goes, so the cache never takes it back on the strength of it.
  if (task.operation !== 'malloc') forgetCacheOwner(heap.memory.u32, task.address);
  mutex.lock();
  if (task.operation === 'malloc') backend.allocate(task.size, MIN_ALIGN);
  else if (task.operation === 'free') backend.release(task.address);
  else backend.resizeInPlace?.(task.address, task.size);
  mutex.unlock();
  heap.detach();
  return 'finished';
}

async function cacheStepDeath(task: CacheStepDeathTask): Promise<string> {
  const heap = await GlobalAllocator.attach(task.buffer, { trustModules: task.trustModules ?? [] });
  const cache = heap.threadCacheOfThisThread;
  if (cache === null) throw new Error('cache-step-death: this heap has no thread cache');
  let seen = 0;
  cache.stepHook = (step) => {
    if (step === task.step && ++seen === task.nth) process.exit(0);
  };
  for (const address of task.remoteFrees ?? []) heap.free(address);
  // Sizes of a few classes, freed in bursts so bins fill past their limit (flushes) and
  // drain (refills).
  const live = new Int32Array(task.live);
  for (let round = 0; round < 200; round++) {
    let count = 0;
    for (; count < 40; count++) {
      const address = heap.malloc(8 + ((round + count) % 4) * 24);
      if (address === 0) break;
      live[count] = address;
    }
    while (count > 0) {
      count--;
      heap.free(live[count]!);
      live[count] = 0;
    }
  }
  heap.detach();
  return 'finished';
}

async function allocateAndDetach(task: AllocateAndDetachTask): Promise<number[]> {
  const heap = await GlobalAllocator.attach(task.buffer, { trustModules: task.trustModules ?? [] });
  const kept: number[] = [];
  for (let i = 0; i < task.blocks; i++) {
    const address = heap.malloc(task.size);
    if (address === 0) break;
    heap.memory.u8.fill(i & 0xff, address, address + task.size);
    kept.push(address);
  }
  heap.detach();
  return kept;
}

async function lockStepDeath(task: LockStepDeathTask): Promise<string> {
  const heap = await GlobalAllocator.attach(task.buffer, { trustModules: task.trustModules ?? [] });
  // Blocks freed into this thread's cache first, when asked: the thread dies holding them.
  const cached = Array.from({ length: task.cachedBlocks ?? 0 }, (_, i) => heap.malloc(16 + (i % 4) * 8));
  for (const address of cached) heap.free(address);
  const mutex = SharedHeap.open(task.buffer).mutex(task.lockIndex, heap.threadId);
  mutex.stepHook = (step) => {
    if (step === task.step) process.exit(0);
  };
  mutex.lock();
  if (task.step === 'acquired') process.exit(0);
  mutex.unlock();
  heap.detach();
  return 'acquired';
}

async function corruptionTrial(task: CorruptionTrialTask): Promise<CorruptionOutcome> {
  const heap = await GlobalAllocator.attach(task.buffer, { trustModules: task.trustModules ?? [] });
  const u8 = heap.memory.u8;
  const random = new Random(task.seed * 7 + task.bytes);
  const held: ({ address: number; signature: Signature } | null)[] = [];
  let sequence = 0;
  let refused = false;
  const allocate = (size: number): number => {
    const address = heap.malloc(size);
    if (address !== 0 && (address < heap.arenaStart || address + size > heap.arenaEnd)) {
      throw new Error(`malloc(${size}) returned ${address}, outside the arena ${heap.arenaStart}..${heap.arenaEnd}`);
    }
    return address;
  };
  try {
    for (let i = 0; i < 64; i++) {
      const size = i % 9 === 8 ? random.int(2048, 8192) : random.int(8, 512);
      const address = allocate(size);
      const signature = { writer: 3, sequence: sequence++, size };
      signBlock(u8, address, signature);
      held.push({ address, signature });
    }
    const freed: number[] = [];
    for (let i = 3; i < held.length; i += 4) {
      freed.push(held[i]!.address);
      heap.free(held[i]!.address);
      held[i] = null;
    }
    // The damage, and the range it covers: blocks overlapping it may lose their data (that
    // is the program's bug); any other block that changes was damaged by the allocator.
    let damageStart: number;
    if (task.damage === 'overflow') {
      const victim = held[random.int(0, 16) * 4 + 1]!;
      damageStart = victim.address + heap.usableSize(victim.address);
    } else if (task.damage === 'use-after-free') {
      const index = random.int(0, 16) * 4 + 2;
      damageStart = held[index]!.address;
      heap.free(damageStart);
      held[index] = null;
    } else {
      damageStart = freed[random.int(0, freed.length)]!;
    }
    const damageEnd = damageStart + task.bytes;
    for (let at = damageStart; at < damageEnd && at < heap.arenaEnd; at++) u8[at] = random.nextU32() & 0xff;
    const damaged = (block: { address: number; signature: Signature }): boolean =>
      block.address < damageEnd && damageStart < block.address + block.signature.size;
    for (let step = 0; step < 400; step++) {
      const slot = random.int(0, held.length);
      const block = held[slot];
      if (block !== null && block !== undefined) {
        if (!damaged(block)) {
          const problem = verifyBlock(u8, block.address, block.signature);
          if (problem !== null) throw new Error(`a block the damage did not touch changed: ${problem}`);
        }
        try {
          heap.free(block.address);
        } catch (error) {
          if (!(error instanceof AllocError) || error.kind !== 'NotAllocated') throw error;
          refused = true;
        }
        held[slot] = null;
      } else {
        const size = random.int(8, 1024);
        const address = allocate(size);
        if (address === 0) continue;
        const signature = { writer: 3, sequence: sequence++, size };
        signBlock(u8, address, signature);
        held[slot] = { address, signature };
      }
    }
  } catch (error) {
    if (error instanceof AllocError && error.kind === 'HeapCorrupted') return { outcome: 'detected', message: error.message };
    throw error;
  }
  try {
    heap.check();
  } catch (error) {
    if (error instanceof AllocError && error.kind === 'HeapCorrupted') return { outcome: 'detected-by-check', message: error.message };
    throw error;
  }
  return { outcome: refused ? 'refused' : 'clean', message: '' };
}

async function walkTask(task: WalkTask): Promise<WalkOutcome> {
  const heap = await GlobalAllocator.attach(task.buffer, { trustModules: task.trustModules ?? [] });
  try {
    return { outcome: 'walked', regions: heap.walk().length, tables: heap.classStats().length };
  } catch (error) {
    if (error instanceof AllocError) return { outcome: 'error', kind: error.kind, message: error.message };
    throw error;
  } finally {
    heap.detach();
  }
}

async function runTask(task: KitTask): Promise<unknown> {
  switch (task.kind) {
    case 'ping':
      return 'pong';
    case 'churn':
      return churn(task);
    case 'mutex':
      return mutexTask(task);
    case 'hold-lock':
      return holdLock(task);
    case 'exit-on-signal':
      return exitOnSignal(task);
    case 'nested-lock':
      return nestedLock(task);
    case 'die-in-backend':
      return dieInBackend(task);
    case 'lock-step-death':
      return lockStepDeath(task);
    case 'corruption-trial':
      return corruptionTrial(task);
    case 'allocate-and-detach':
      return allocateAndDetach(task);
    case 'cache-step-death':
      return cacheStepDeath(task);
    case 'walk':
      return walkTask(task);
  }
}

serveTasks(runTask);
