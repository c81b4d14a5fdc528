/**
 * A thread's death at any step of a lock acquisition, a lock held by a dead thread, stale
 * handles, and what the reaper reports: issue #12's "survive a thread's death at any instant".
 */

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
    // Reaping by Node thread id takes every slot of this thread, the caller's included.
    expect(heap.releaseThreadsOf(registry.nodeThreadId(other.threadId)).threads).toHaveLength(2);
    const next = GlobalAllocator.attachSync(heap.buffer);
    expect(next.threadId).toBe(heap.threadId);
    expect(registry.generation(next.threadId)).toBe(generation + 1);
    // Both stale handles detach: neither may touch the slot `next` holds now.
    other.detach();
    heap.detach();
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
