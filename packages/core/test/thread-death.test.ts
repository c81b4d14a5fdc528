/**
 * A thread's death at any step of a lock acquisition, a lock held by a dead thread, stale
 * handles, and what the reaper reports: issue #12's "survive a thread's death at any instant".
 */

import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GlobalAllocator, LockIndex, MiB, type ReapReport, SharedHeap, ThreadRegistry } from '../src/index.js';
import type { LockStepDeathTask } from '@heaplab/test-kit';
import { expectAllocError, spawnKitWorker, WorkerPool } from '@heaplab/test-kit';
import { diesInDetachBackend } from './fixtures/dies-in-detach-backend.js';
import { flakyRepairBackend, setRefusals } from './fixtures/flaky-repair-backend.js';

/** Runs `task` in a fresh kit worker and resolves with the reaper's report once it died. */
async function dieIn(heap: GlobalAllocator, task: LockStepDeathTask): Promise<ReapReport> {
  const worker: Worker = spawnKitWorker();
  const reaped = new Promise<ReapReport>((resolve) => heap.watchWorker(worker, resolve));
  worker.postMessage({ id: 1, task });
  return reaped;
}

/** Waits, without blocking this thread, until word `index` of `words` is set. */
async function signalled(words: Int32Array, index: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Atomics.load(words, index) === 0) {
    if (Date.now() > deadline) throw new Error(`signal word ${index} never set`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('a thread that dies while taking a lock', () => {
  for (const step of ['spun', 'announced', 'parked'] as const) {
    it(`leaves no lock wedged when it dies at step '${step}' of a contended acquisition`, async () => {
      const heap = GlobalAllocator.create({ heapBytes: 4 * MiB, lockTimeoutMs: 2000 });
      const mutex = SharedHeap.open(heap.buffer).mutex(LockIndex.heap, heap.threadId);
      mutex.lock();
      const report = await dieIn(heap, { kind: 'lock-step-death', buffer: heap.buffer, lockIndex: LockIndex.heap, step });
      // The waiter died without ever holding the lock: nothing to poison or repair.
      expect(report.threads).toHaveLength(1);
      expect(report.recovered).toEqual([]);
      expect(mutex.holder()).toBe(heap.threadId);
      mutex.unlock();
      expect(mutex.holder()).toBe(0);
      const address = heap.malloc(64);
      expect(address).not.toBe(0);
      heap.free(address);
      heap.check();
      heap.detach();
    });
  }

  it('is known as the holder the moment it holds the lock, so its death is always repaired', async () => {
    for (let round = 0; round < 5; round++) {
      const heap = GlobalAllocator.create({ heapBytes: 4 * MiB, lockTimeoutMs: 60_000 });
      const kept = heap.malloc(100);
      const report = await dieIn(heap, { kind: 'lock-step-death', buffer: heap.buffer, lockIndex: LockIndex.heap, step: 'acquired' });
      expect(report.failed).toEqual([]);
      expect(report.recovered).toEqual(['heap']);
      // Poisoned, repaired and lifted: the heap works at once, without waiting for a timeout.
      const started = performance.now();
      const address = heap.malloc(64);
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(address).not.toBe(0);
      heap.free(address);
      heap.free(kept);
      heap.check();
      expect(heap.stats().recovery).toMatchObject({ succeeded: 1, failed: 0, lostBytes: 0 });
      heap.detach();
    }
  });

  it('names a dead holder nobody reaped when the wait times out, and releaseThreadsOf repairs it', async () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB, lockTimeoutMs: 300 });
    const worker = spawnKitWorker();
    // A worker's threadId reads -1 once it exited: keep it.
    const nodeThreadId = worker.threadId;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ id: 1, task: { kind: 'lock-step-death', buffer: heap.buffer, lockIndex: LockIndex.heap, step: 'acquired' } });
    await exited;
    const error = expectAllocError(() => heap.malloc(8), 'LockTimeout');
    expect(error.message).toMatch(/lock 'heap' not acquired within 300 ms: held by thread \d+ \(Node threadId \d+, active\)/);
    const report = heap.releaseThreadsOf(nodeThreadId);
    expect(report.recovered).toEqual(['heap']);
    heap.free(heap.malloc(8));
    heap.check();
    heap.detach();
  });
});

describe('the reaper', () => {
  it('never throws from the exit handler; a failed repair is recorded and named by the next error', async () => {
    setRefusals(1);
    const heap = GlobalAllocator.create({ backend: flakyRepairBackend, heapBytes: 4 * MiB, lockTimeoutMs: 60_000 });
    const report = await dieIn(heap, {
      kind: 'lock-step-death',
      buffer: heap.buffer,
      lockIndex: LockIndex.heap,
      step: 'acquired',
      trustModules: [flakyRepairBackend.moduleUrl],
    });
    expect(report.recovered).toEqual([]);
    expect(report.failed).toHaveLength(1);
    expect(report.failed[0]!.reason).toMatch(/repairing lock 'heap' after thread \d+ .* died failed: the arena records are unreadable today/);
    const error = expectAllocError(() => heap.malloc(8), 'LockTimeout');
    expect(error.message).toMatch(/poisoned: .*automatic repair failed .*unreadable today.*heap\.recover\(\) tries again/);
    expect(heap.recoveryFigures().failed).toBe(1);
    // The second attempt succeeds.
    expect(heap.recover()).toMatchObject({ recovered: ['heap'], failed: [] });
    heap.free(heap.malloc(8));
    heap.check();
    heap.detach();
  });

  it('gives back the cache of a thread whose lock repair failed at the recover() that repairs it', async () => {
    setRefusals(1);
    const heap = GlobalAllocator.create({ backend: flakyRepairBackend, heapBytes: 4 * MiB, lockTimeoutMs: 60_000 });
    const report = await dieIn(heap, {
      kind: 'lock-step-death',
      buffer: heap.buffer,
      lockIndex: LockIndex.heap,
      step: 'acquired',
      cachedBlocks: 12,
      trustModules: [flakyRepairBackend.moduleUrl],
    });
    // The repair failed, so the dead thread's cache could not be given back then either.
    expect(report.failed.map((failure) => failure.reason)).toEqual([
      expect.stringMatching(/repairing lock 'heap'/),
      expect.stringMatching(/thread cache: .*poisoned/),
    ]);
    const retried = heap.recover();
    expect(retried.recovered).toEqual(['heap']);
    expect(retried.notes.join('\n')).toMatch(/gave back the cache left by thread slot \d+/);
    expect(heap.stats().threadCache!.blocks).toBe(0);
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it('repairs a dead holder of the delayed-free orphan lock', async () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const report = await dieIn(heap, {
      kind: 'lock-step-death',
      buffer: heap.buffer,
      lockIndex: LockIndex.qsbrOrphans,
      step: 'acquired',
    });
    expect(report.recovered).toEqual(['qsbr-orphans']);
    const block = heap.malloc(32);
    heap.freeDelayed(block);
    heap.detach();
  });

  it('finishes the release of a thread that died inside its own detach', async () => {
    const heap = GlobalAllocator.create({ backend: diesInDetachBackend, heapBytes: 4 * MiB, maxThreads: 2 });
    const worker = spawnKitWorker();
    const reaped = new Promise<ReapReport>((resolve) => heap.watchWorker(worker, resolve));
    worker.postMessage({
      id: 1,
      task: { kind: 'allocate-and-detach', buffer: heap.buffer, blocks: 10, size: 48, trustModules: [diesInDetachBackend.moduleUrl] },
    });
    const replied = new Promise<unknown>((resolve) => worker.once('message', resolve));
    const report = await Promise.race([reaped, replied.then((reply) => ({ reply }))]);
    if ('reply' in report) throw new Error(`the worker did not die in detach: ${JSON.stringify(report.reply)}`);
    expect(report.failed).toEqual([]);
    expect(report.threads).toHaveLength(1);
    // The slot the worker left `releasing` is free again: with maxThreads 2, a new handle fits.
    expect(heap.attachedThreads()).toBe(1);
    const second = GlobalAllocator.attachSync(heap.buffer, { backends: [diesInDetachBackend] });
    expect(second.threadId).toBe(report.threads[0]);
    second.detach();
    // The worker's ten blocks stay live, as after any detach.
    expect(heap.stats().usedBytes).toBeGreaterThanOrEqual(10 * 48);
    heap.check();
    heap.detach();
  });

  it('reaps through a fresh handle when the watching handle was detached meanwhile', async () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const watcher = GlobalAllocator.attachSync(heap.buffer);
    const worker = spawnKitWorker();
    const reaped = new Promise<ReapReport>((resolve) => watcher.watchWorker(worker, resolve));
    watcher.detach();
    worker.postMessage({ id: 1, task: { kind: 'lock-step-death', buffer: heap.buffer, lockIndex: LockIndex.heap, step: 'acquired' } });
    const report = await reaped;
    expect(report.recovered).toEqual(['heap']);
    expect(report.threads).toHaveLength(1);
    expect(heap.attachedThreads()).toBe(1);
    heap.free(heap.malloc(8));
    heap.detach();
  });
});

describe('workers that die together', () => {
  it("a watched worker's reap waits, without blocking the event loop, for the reap of a dead thread holding the lock it needs", async () => {
    const lockTimeoutMs = 4000;
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB, lockTimeoutMs });
    const kept = heap.malloc(200);
    // The first worker fills its cache, then waits for the word to end its thread.
    const signal = new SharedArrayBuffer(8);
    const words = new Int32Array(signal);
    const cacheOwner = spawnKitWorker();
    const reaped = new Promise<ReapReport>((resolve) => heap.watchWorker(cacheOwner, resolve));
    const cacheOwnerExited = new Promise<void>((resolve) => cacheOwner.once('exit', () => resolve()));
    cacheOwner.postMessage({ id: 1, task: { kind: 'exit-on-signal', buffer: heap.buffer, cachedBlocks: 12, signal } });
    await signalled(words, 0);
    // The second dies holding the heap lock, which the first one's reap needs to give its
    // cache back; nobody has reaped it yet (its exit event, as it were, waits behind).
    const holder = spawnKitWorker();
    const holderNodeId = holder.threadId;
    const holderExited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
    holder.postMessage({ id: 1, task: { kind: 'lock-step-death', buffer: heap.buffer, lockIndex: LockIndex.heap, step: 'acquired' } });
    await holderExited;
    const toldAt = performance.now();
    Atomics.store(words, 1, 1);
    Atomics.notify(words, 1);
    // Watched first, so the reaper's exit handler runs before this listener: had it waited
    // on the lock, this would resolve only after the lock timeout.
    await cacheOwnerExited;
    expect(performance.now() - toldAt).toBeLessThan(lockTimeoutMs / 2);
    // Its slot is being reaped: no longer attached, not yet free (stats() would take the
    // lock, so it is not asked).
    expect(heap.attachedThreads()).toBe(2);
    // The holder's reap repairs and frees the lock; the waiting reap then finishes.
    expect(heap.releaseThreadsOf(holderNodeId).recovered).toEqual(['heap']);
    const report = await reaped;
    expect(report.failed).toEqual([]);
    expect(report.threads).toHaveLength(1);
    expect(heap.stats().threadCache!.blocks).toBe(0);
    expect(heap.attachedThreads()).toBe(1);
    heap.check();
    heap.free(kept);
    expect(heap.usedBytes()).toBe(0);
    heap.detach();
  });

  it('a thread waiting on the lock of a dead holder gets it once the reaper has repaired it, rather than an error', async () => {
    const heap = GlobalAllocator.create({ backend: 'basic:tcache=false', heapBytes: 64 * MiB, lockTimeoutMs: 20_000 });
    // Many blocks, so that rebuilding the heap's free lists takes a while.
    for (let i = 0; i < 200_000; i++) heap.malloc(24 + (i % 5) * 8);
    const holder = spawnKitWorker();
    const holderNodeId = holder.threadId;
    const holderExited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
    holder.postMessage({ id: 1, task: { kind: 'lock-step-death', buffer: heap.buffer, lockIndex: LockIndex.heap, step: 'acquired' } });
    await holderExited;
    // A worker whose first malloc must refill its cache under the heap lock: it waits there.
    const mutex = SharedHeap.open(heap.buffer).mutex(LockIndex.heap, heap.threadId);
    const parked = mutex.contendedCount();
    const pool = await WorkerPool.start(1);
    try {
      const churn = pool.run(0, { kind: 'churn', buffer: heap.buffer, seed: 3, iterations: 200, slots: 8, maxSize: 256 });
      const deadline = Date.now() + 20_000;
      while (mutex.contendedCount() === parked && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(mutex.contendedCount()).toBeGreaterThan(parked);
      expect(heap.releaseThreadsOf(holderNodeId).recovered).toEqual(['heap']);
      await expect(churn).resolves.toBeDefined();
    } finally {
      await pool.close();
    }
    heap.check();
    heap.detach();
  });
});

describe('a waiter when the reaper seizes the lock', () => {
  it('reads the lock again after the poison: a state word it loaded before the seizure does not make it fail as poisoned', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB, lockTimeoutMs: 300 });
    const shared = SharedHeap.open(heap.buffer);
    const dead = shared.mutex(LockIndex.pools, 7);
    const waiter = shared.mutex(LockIndex.pools, 8);
    const reaper = shared.mutex(LockIndex.pools, 9);
    dead.lock(); // thread 7 holds it, and "dies"
    let seized = false;
    // Between the waiter's load of the state word and its poison check, the reaper seizes.
    waiter.stepHook = (step) => {
      if (step === 'announced' && !seized) seized = reaper.seizeFromDead(7);
    };
    // Nobody ends this repair, so the waiter times out: but as a waiter for the repairer,
    // not as one of an abandoned lock.
    const error = expectAllocError(() => waiter.lock(), 'LockTimeout');
    expect(seized).toBe(true);
    expect(error.message).toMatch(/lock 'pools' not acquired within 300 ms: held by thread 9/);
    reaper.clearPoison();
    reaper.unlock();
    heap.detach();
  });
});

describe('workers that die together, each holding a lock', () => {
  /** A watched worker that fills its cache, takes lock `lockIndex` and dies holding it when told. */
  function doomedHolder(heap: GlobalAllocator, lockIndex: number) {
    const signal = new SharedArrayBuffer(8);
    const words = new Int32Array(signal);
    const worker = spawnKitWorker();
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const reaped = new Promise<{ report: ReapReport; at: number }>((resolve) =>
      heap.watchWorker(worker, (report) => resolve({ report, at: performance.now() })),
    );
    worker.postMessage({ id: 1, task: { kind: 'exit-on-signal', buffer: heap.buffer, cachedBlocks: 12, signal, lockIndex } });
    const die = (): void => {
      Atomics.store(words, 1, 1);
      Atomics.notify(words, 1);
    };
    return { ready: signalled(words, 0), die, exited, reaped };
  }

  it('are reaped without waiting for each other, and without stalling the event loop', async () => {
    const lockTimeoutMs = 3000;
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB, lockTimeoutMs });
    let longestGap = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
    }, 5);
    try {
      const pools = doomedHolder(heap, LockIndex.pools);
      await pools.ready;
      const heapLock = doomedHolder(heap, LockIndex.heap);
      await heapLock.ready;
      const started = performance.now();
      pools.die();
      await pools.exited;
      heapLock.die();
      await heapLock.exited;
      const reaps = await Promise.all([pools.reaped, heapLock.reaped]);
      for (const { report } of reaps) expect(report.failed).toEqual([]);
      expect(reaps.map(({ report }) => report.recovered)).toEqual([['pools'], ['heap']]);
      expect(Math.max(...reaps.map(({ at }) => at)) - started).toBeLessThan(lockTimeoutMs / 2);
      expect(longestGap).toBeLessThan(lockTimeoutMs / 2);
    } finally {
      clearInterval(ticker);
    }
    expect(heap.attachedThreads()).toBe(1);
    expect(heap.stats().threadCache!.blocks).toBe(0);
    heap.check();
    heap.detach();
  });

  it('a live thread that holds an outer lock and waits on a dead holder of an inner one gets it once the dead thread is reaped', async () => {
    const lockTimeoutMs = 3000;
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB, lockTimeoutMs });
    const holder = doomedHolder(heap, LockIndex.heap);
    await holder.ready;
    const pool = await WorkerPool.start(1);
    try {
      const signal = new SharedArrayBuffer(8);
      const nested = pool.run(0, { kind: 'nested-lock', buffer: heap.buffer, outer: LockIndex.pools, inner: LockIndex.heap, signal });
      await signalled(new Int32Array(signal), 0);
      const started = performance.now();
      holder.die();
      const { report, at } = await holder.reaped;
      expect(report.recovered).toEqual(['heap']);
      expect(report.failed).toEqual([]);
      await expect(nested).resolves.toBe('acquired');
      expect(at - started).toBeLessThan(lockTimeoutMs / 2);
    } finally {
      await pool.close();
    }
    heap.check();
    heap.detach();
  });
});

describe("the second half of watchWorker's reap", () => {
  /** Something watchWorker takes for a worker of this Node thread, ending when told. */
  const fakeWorker = (): EventEmitter & { threadId: number } => Object.assign(new EventEmitter(), { threadId: 0 });

  it('runs through a fresh handle when the watching handle detached while it waited, losing nothing', async () => {
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB, lockTimeoutMs: 5000 });
    // The "dead" thread: a second handle of this Node thread, with delayed frees pending.
    const dying = GlobalAllocator.attachSync(heap.buffer);
    for (let i = 0; i < 10; i++) dying.freeDelayed(dying.malloc(64));
    // A live thread holds a lock, so the second half waits for it to move.
    const live = SharedHeap.open(heap.buffer).mutex(LockIndex.pools, 50);
    live.lock();
    const worker = fakeWorker();
    const reaped = new Promise<ReapReport>((resolve) => heap.watchWorker(worker as unknown as Worker, resolve));
    worker.emit('exit');
    heap.detach();
    live.unlock();
    const report = await reaped;
    expect(report.failed).toEqual([]);
    expect(report.threads).toEqual([dying.threadId]);
    const after = GlobalAllocator.attachSync(heap.buffer);
    // The dead thread's pending frees were handed over, not lost with a detached handle:
    // they all complete.
    after.quiescent();
    after.processDelayed();
    expect(after.usedBytes()).toBe(0);
    expect(after.attachedThreads()).toBe(1);
    after.check();
    after.detach();
  });

  it('leaves the recovery figures to the second half when another thread holds their lock, instead of waiting on it', async () => {
    const lockTimeoutMs = 1500;
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB, lockTimeoutMs });
    const dying = GlobalAllocator.attachSync(heap.buffer);
    // It "dies" holding the heap lock, which its reap must repair and count.
    SharedHeap.open(heap.buffer).mutex(LockIndex.heap, dying.threadId).lock();
    const recoveryHolder = SharedHeap.open(heap.buffer).mutex(LockIndex.recovery, 50);
    recoveryHolder.lock();
    const worker = fakeWorker();
    const reaped = new Promise<ReapReport>((resolve) => heap.watchWorker(worker as unknown as Worker, resolve));
    const started = performance.now();
    worker.emit('exit');
    expect(performance.now() - started).toBeLessThan(lockTimeoutMs / 2);
    recoveryHolder.unlock();
    const report = await reaped;
    expect(report.recovered).toEqual(['heap']);
    expect(heap.recoveryFigures().succeeded).toBe(1);
    heap.check();
    heap.detach();
  });
});

describe('thread slots', () => {
  it('a stale handle detaching again never releases the slot another handle holds', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const first = GlobalAllocator.attachSync(heap.buffer);
    const id = first.threadId;
    first.detach();
    const second = GlobalAllocator.attachSync(heap.buffer);
    expect(second.threadId).toBe(id);
    first.detach();
    const third = GlobalAllocator.attachSync(heap.buffer);
    expect(third.threadId).not.toBe(id);
    expect(heap.attachedThreads()).toBe(3);
    const registry = new ThreadRegistry(heap.memory, 64);
    expect(registry.isActive(id)).toBe(true);
    second.free(second.malloc(8));
    for (const handle of [second, third, heap]) handle.detach();
  });

  it('a handle whose slot was reaped cannot release the slot its next holder claimed', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const other = GlobalAllocator.attachSync(heap.buffer);
    const registry = new ThreadRegistry(heap.memory, 64);
    const generation = registry.generation(heap.threadId);
    // Reaping by Node thread id takes every slot of this thread but the caller's own.
    expect(other.releaseThreadsOf(registry.nodeThreadId(heap.threadId)).threads).toEqual([heap.threadId]);
    const next = GlobalAllocator.attachSync(heap.buffer);
    expect(next.threadId).toBe(heap.threadId);
    expect(registry.generation(next.threadId)).toBe(generation + 1);
    // The stale handle detaches: it may not touch the slot `next` holds now.
    heap.detach();
    other.detach();
    expect(registry.isActive(next.threadId)).toBe(true);
    expect(next.attachedThreads()).toBe(1);
    next.free(next.malloc(8));
    next.detach();
    expect(registry.isActive(next.threadId)).toBe(false);
  });

  it('refuses QSBR calls on a detached handle', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const other = GlobalAllocator.attachSync(heap.buffer);
    other.detach();
    for (const call of [() => other.quiescent(), () => other.idle(), () => other.resume(), () => other.processDelayed()]) {
      expect(expectAllocError(call, 'InvalidParam').message).toMatch(/detached/);
    }
    heap.detach();
  });
});

describe('a lock poisoned by a worker that exits holding it', () => {
  let pool: WorkerPool;
  beforeAll(async () => {
    pool = await WorkerPool.start(1);
  }, 60_000);
  afterAll(async () => {
    await pool?.close();
  });

  it('keeps waiters out until the repair, then lets them in', async () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const signal = new SharedArrayBuffer(8);
    const done = pool.run(0, { kind: 'hold-lock', buffer: heap.buffer, lockIndex: LockIndex.backend1, signal, mode: 'release-on-signal' });
    const words = new Int32Array(signal);
    while (Atomics.load(words, 0) === 0) Atomics.wait(words, 0, 0, 20);
    const mutex = SharedHeap.open(heap.buffer).mutex(LockIndex.backend1, heap.threadId);
    expect(mutex.tryLock()).toBe(false);
    Atomics.store(words, 1, 1);
    Atomics.notify(words, 1);
    await expect(done).resolves.toBe('released');
    expect(mutex.tryLock()).toBe(true);
    mutex.unlock();
    heap.detach();
  });
});
