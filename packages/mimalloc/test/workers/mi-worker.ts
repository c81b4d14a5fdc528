/**
 * The worker side of the mimalloc package's own multi-thread tests (stress, stalled
 * producer). Started through core's worker bootstrap; keeps one heap handle between tasks.
 */

import { GlobalAllocator } from '@heaplab/core';
import { serveTasks } from '@heaplab/test-kit';

import { collect, flushRemoteFrees, heapReport, type MiStep, setDelayedFreeStall, setStepHook, stallOn } from '../../src/index.js';

export type MiTask =
  | { kind: 'stress'; buffer: SharedArrayBuffer; transfer: SharedArrayBuffer; seed: number; iterations: number; keepLive: number }
  | { kind: 'owner-fill'; buffer: SharedArrayBuffer; count: number; size: number }
  | { kind: 'owner-churn'; count: number; size: number }
  | { kind: 'owner-detach' }
  | { kind: 'stalled-free'; buffer: SharedArrayBuffer; signal: SharedArrayBuffer; address: number }
  | { kind: 'cache-and-detach'; buffer: SharedArrayBuffer; rounds: number }
  | { kind: 'forced-collects'; buffer: SharedArrayBuffer; rounds: number }
  | { kind: 'attach-reclaim'; buffer: SharedArrayBuffer }
  | DieAtTask
  | OwnerDiesTask;

/**
 * The owner side of a dead-owner test. Phase 1: allocate `keep` signed blocks of mixed sizes
 * and 1100 victims of 64 bytes (a full first page), publish them in `shared`, and wait for
 * the main thread to free some victims remotely (phase 2). Then, with a hook that ends the
 * thread at the `occurrence`-th `step`: 'free-all' allocates 600 blocks of 240 bytes (a size
 * class no kept block has)
 * (publishing each) and frees them all; 'collect' runs a collect; 'detach' detaches, so the
 * thread dies inside its own abandon. For 'detach', phase 1 also leaves every kind of page
 * the abandon meets: 600 blocks of 240 bytes freed (empty pages, retired or held with a goal
 * the main thread passes in phase 2), OWNER_REMOTE_COUNT blocks of 1500 bytes for the main
 * thread to free remotely (a page the abandon's collect empties), and 300 blocks of 480 bytes
 * and one of 1 MiB that are freed after phase 2 (pages held with a goal nobody passed, or
 * retired; a segment in the heap's cache).
 *
 * `shared` (Int32Array): [0] phase, [1] keep count, [2] victim count, [3] published op
 * blocks; from OWNER_KEEP: keep (address, size) pairs; from OWNER_VICTIMS: victims; from
 * OWNER_OPS: op blocks.
 */
export interface OwnerDiesTask {
  kind: 'owner-dies';
  buffer: SharedArrayBuffer;
  shared: SharedArrayBuffer;
  step: MiStep;
  occurrence: number;
  operation: 'free-all' | 'collect' | 'detach';
  keep: number;
}
export const OWNER_KEEP = 16;
/** 'detach': 20 blocks of 1500 bytes (one page) that the main thread frees remotely in phase 2. */
export const OWNER_REMOTE = 3072;
export const OWNER_REMOTE_COUNT = 20;
export const OWNER_VICTIMS = 1024;
export const OWNER_OPS = 4096;
export const OWNER_SHARED_BYTES = 4 * 8192;

/** The signature of a kept block: word `i` (from 2) of the block at `address`. */
export function keptWord(address: number, i: number): number {
  return (Math.imul(address, 2654435761) + i) >>> 0;
}

/**
 * Attach, then run `operation` with a step hook that ends the thread (`process.exit()`: no
 * `finally` runs, as when a thread is killed) when it reaches `step`, or, with `signal`,
 * stalls it there until the main thread sets word 1. Replies 'finished' when the operation
 * never reached the step.
 */
export interface DieAtTask {
  kind: 'die-at';
  buffer: SharedArrayBuffer;
  step: MiStep;
  /** Reach the step this many times before dying (default 1). */
  occurrence?: number;
  operation: 'free' | 'malloc' | 'detach' | 'collect' | 'free-all' | 'add-memory';
  /** Blocks to free ('free'); for 'add-memory', the range's start and size. */
  addresses: number[];
  /** Blocks to allocate ('malloc', 'free-all'; default 1) and their size (default 64). */
  count?: number;
  size?: number;
  /** Stall instead of dying. */
  signal?: SharedArrayBuffer;
}

/** What a stress task did; `leftovers` are blocks it left live for the main thread to free. */
export interface StressResult {
  allocations: number;
  localFrees: number;
  remoteFrees: number;
  leftovers: number[];
  /** Abandoned segments this thread reclaimed. */
  reclaimed: number;
}

let handle: GlobalAllocator | null = null;

/**
 * Signs a block of `size` bytes (a multiple of 4, at least 8): word 0 holds the size, word 1
 * the address mixed with a constant, every later word a sequence seeded by the address, so
 * a receiver can verify a block it did not allocate.
 */
function sign(u32: Uint32Array, address: number, size: number): void {
  const first = address >>> 2;
  u32[first] = size;
  let x = (address ^ 0x5bd1e995) >>> 0;
  for (let i = 1; i < size >>> 2; i++) {
    u32[first + i] = x;
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
  }
}

/** Verifies a signed block; returns its size. @throws Error naming the first bad word */
function verify(u32: Uint32Array, address: number): number {
  const first = address >>> 2;
  const size = u32[first]!;
  if (size < 8 || size > 8 << 20 || size % 4 !== 0) throw new Error(`block ${address.toString(16)} lost its size word (${size})`);
  let x = (address ^ 0x5bd1e995) >>> 0;
  for (let i = 1; i < size >>> 2; i++) {
    if (u32[first + i] !== x) throw new Error(`block ${address.toString(16)} word ${i} of ${size >>> 2} was overwritten`);
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
  }
  return size;
}

function nextRandom(state: number): number {
  let x = state | 0 || 1;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}

async function stress(task: Extract<MiTask, { kind: 'stress' }>): Promise<StressResult> {
  const heap = await GlobalAllocator.attach(task.buffer);
  handle = heap;
  const u32 = heap.memory.u32;
  const transfer = new Uint32Array(task.transfer);
  const local: number[] = [];
  const result: StressResult = { allocations: 0, localFrees: 0, remoteFrees: 0, leftovers: [], reclaimed: 0 };
  let random = task.seed;
  for (let i = 0; i < task.iterations; i++) {
    random = nextRandom(random);
    const roll = random & 63;
    if (roll < 28 || local.length === 0) {
      // Mostly small, some medium and large, a few huge blocks; at least 8 bytes so a signature fits.
      random = nextRandom(random);
      const size = 8 + 4 * (roll < 24 ? random % 64 : roll < 27 ? random % 8000 : i % 500 === 0 ? 700_000 : random % 40_000);
      const address = heap.malloc(size);
      if (address === 0) throw new Error(`thread ${heap.threadId}: malloc(${size}) failed`);
      sign(u32, address, size);
      local.push(address);
      result.allocations++;
    } else if (roll < 48) {
      // Swap a block through a transfer slot: whatever was there came from another thread.
      const block = local.pop()!;
      const taken = Atomics.exchange(transfer, random % transfer.length, block);
      if (taken !== 0) {
        verify(u32, taken);
        heap.free(taken);
        result.remoteFrees++;
      }
    } else {
      const index = random % local.length;
      const block = local[index]!;
      verify(u32, block);
      heap.free(block);
      local[index] = local[local.length - 1]!;
      local.pop();
      result.localFrees++;
    }
  }
  while (local.length > task.keepLive) {
    const block = local.pop()!;
    verify(u32, block);
    heap.free(block);
    result.localFrees++;
  }
  result.leftovers = local;
  result.reclaimed = heapReport(heap).threads.find((thread) => thread.threadId === heap.threadId)!.events.segmentsReclaimed;
  return result;
}

async function runTask(task: MiTask): Promise<unknown> {
  switch (task.kind) {
    case 'stress':
      return stress(task);
    case 'owner-fill': {
      handle = await GlobalAllocator.attach(task.buffer);
      return Array.from({ length: task.count }, () => handle!.malloc(task.size));
    }
    case 'owner-churn': {
      // Keeps allocating (through the slow path many times) and collecting while a remote
      // free is stalled: none of it may wait for the stalled thread.
      const blocks = Array.from({ length: task.count }, (_, i) => handle!.malloc(i % 2 === 0 ? task.size : 3000));
      collect(handle!, false);
      for (const block of blocks) handle!.free(block);
      collect(handle!, false);
      return blocks.length;
    }
    case 'owner-detach': {
      const started = performance.now();
      handle!.detach();
      handle = null;
      return performance.now() - started;
    }
    case 'cache-and-detach': {
      // Each round a new thread slot leaves an empty large segment in its cache and detaches.
      await GlobalAllocator.attach(task.buffer).then((first) => first.detach());
      for (let round = 0; round < task.rounds; round++) {
        const heap = GlobalAllocator.attachSync(task.buffer);
        heap.free(heap.malloc(1 << 20));
        heap.detach();
      }
      return task.rounds;
    }
    case 'forced-collects': {
      // Takes other threads' cached segments, and uses the freed room at once.
      const heap = await GlobalAllocator.attach(task.buffer);
      for (let round = 0; round < task.rounds; round++) {
        collect(heap, true);
        heap.free(heap.malloc(1 << 20));
      }
      heap.detach();
      return task.rounds;
    }
    case 'die-at': {
      const heap = await GlobalAllocator.attach(task.buffer);
      handle = heap;
      let left = task.occurrence ?? 1;
      setStepHook(heap, (step) => {
        if (step !== task.step || --left > 0) return;
        if (task.signal !== undefined) stallOn(new Int32Array(task.signal));
        else process.exit(0);
      });
      const count = task.count ?? 1;
      const size = task.size ?? 64;
      if (task.operation === 'free') {
        for (const address of task.addresses) heap.free(address);
        // Remote frees wait in this thread's buffer: pushed here, with the hook still on.
        flushRemoteFrees(heap);
      } else if (task.operation === 'malloc') {
        for (let i = 0; i < count; i++) heap.malloc(size);
      } else if (task.operation === 'add-memory') {
        heap.addMemory(task.addresses[0]!, task.addresses[1]!);
      } else if (task.operation === 'collect') {
        collect(heap, true);
      } else if (task.operation === 'free-all') {
        // Allocate, then free all of it: every owner step of malloc and free runs.
        const blocks = Array.from({ length: count }, () => heap.malloc(size));
        for (const block of blocks) heap.free(block);
      }
      if (task.operation !== 'detach') setStepHook(heap, null);
      heap.detach();
      handle = null;
      return 'finished';
    }
    case 'owner-dies': {
      const heap = await GlobalAllocator.attach(task.buffer);
      handle = heap;
      const shared = new Int32Array(task.shared);
      const u32 = heap.memory.u32;
      const sizes = [16, 48, 200, 1000, 3000, 20_000, 100_000];
      for (let i = 0; i < task.keep; i++) {
        const size = sizes[i % sizes.length]!;
        const block = heap.malloc(size);
        for (let w = 2; w < Math.min(size >>> 2, 64); w++) u32[(block >>> 2) + w] = keptWord(block, w);
        shared[OWNER_KEEP + 2 * i] = block;
        shared[OWNER_KEEP + 2 * i + 1] = size;
      }
      for (let i = 0; i < 1100; i++) shared[OWNER_VICTIMS + i] = heap.malloc(64);
      let late: number[] = [];
      if (task.operation === 'detach') {
        const early = Array.from({ length: 600 }, () => heap.malloc(240));
        for (const block of early) heap.free(block);
        for (let i = 0; i < OWNER_REMOTE_COUNT; i++) shared[OWNER_REMOTE + i] = heap.malloc(1500);
        late = Array.from({ length: 300 }, () => heap.malloc(480));
        late.push(heap.malloc(1 << 20));
      }
      shared[1] = task.keep;
      shared[2] = 1100;
      Atomics.store(shared, 0, 1);
      Atomics.notify(shared, 0);
      const deadline = Date.now() + 20_000;
      while (Atomics.load(shared, 0) !== 2 && Date.now() < deadline) Atomics.wait(shared, 0, 1, 50);
      // Frees only: a malloc's slow path would drain the delayed list before the abandon does.
      for (const block of late) heap.free(block);
      let left = task.occurrence;
      setStepHook(heap, (step) => {
        if (step === task.step && --left === 0) process.exit(0);
      });
      if (task.operation === 'detach') {
        heap.detach();
        handle = null;
        return 'finished';
      }
      if (task.operation === 'collect') {
        collect(heap);
      } else {
        const blocks: number[] = [];
        for (let i = 0; i < 600; i++) {
          const block = heap.malloc(240);
          blocks.push(block);
          shared[OWNER_OPS + i] = block;
          shared[3] = i + 1;
        }
        for (const block of blocks) heap.free(block);
      }
      setStepHook(heap, null);
      heap.detach();
      handle = null;
      return 'finished';
    }
    case 'attach-reclaim': {
      // A new thread after a death: it reclaims every abandoned segment, allocates and frees
      // in the sizes the dead thread used, and detaches.
      const heap = await GlobalAllocator.attach(task.buffer);
      collect(heap, true);
      const reclaimed = heapReport(heap).threads.find((thread) => thread.threadId === heap.threadId)!.events.segmentsReclaimed;
      const blocks = [16, 64, 240, 480, 1500, 3000, 100_000, 1 << 20].map((size) => heap.malloc(size));
      if (blocks.includes(0)) throw new Error(`a malloc failed after the death: ${blocks.join(', ')}`);
      for (const block of blocks) heap.free(block);
      heap.check();
      heap.detach();
      return reclaimed;
    }
    case 'stalled-free': {
      const heap = await GlobalAllocator.attach(task.buffer);
      setDelayedFreeStall(heap, new Int32Array(task.signal));
      heap.free(task.address);
      flushRemoteFrees(heap);
      setDelayedFreeStall(heap, null);
      heap.detach();
      return 'freed';
    }
  }
}

serveTasks(runTask);
