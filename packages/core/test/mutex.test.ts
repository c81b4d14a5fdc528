import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AllocError, GlobalAllocator, LockIndex, MiB, SharedHeap } from '../src/index.js';
import { spawnKitWorker, WorkerPool, WorkerTaskError } from '@heaplab/test-kit';

function waitForWord(words: Int32Array, index: number, timeoutMs = 20_000): void {
  const deadline = Date.now() + timeoutMs;
  while (Atomics.load(words, index) === 0) {
    if (Date.now() > deadline) throw new Error(`signal word ${index} never set`);
    Atomics.wait(words, index, 0, 20);
  }
}

describe('SharedMutex', () => {
  let pool: WorkerPool;
  beforeAll(async () => {
    pool = await WorkerPool.start(4);
  }, 60_000);
  afterAll(async () => {
    await pool?.close();
  });

  it('loses no update when 4 workers and the main thread increment a counter under it', async () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const counter = heap.calloc(1, 4);
    const iterations = 50_000;
    const work = Array.from({ length: 4 }, (_, index) =>
      pool.run(index, { kind: 'mutex', buffer: heap.buffer, lockIndex: LockIndex.backend1, iterations, counterAddress: counter }),
    );
    const mutex = SharedHeap.open(heap.buffer).mutex(LockIndex.backend1, heap.threadId);
    // The main thread competes too, between the workers' turns.
    const u32 = heap.memory.u32;
    for (let i = 0; i < 2000; i++) {
      mutex.lock();
      u32[counter >>> 2] = u32[counter >>> 2]! + 1;
      mutex.unlock();
      if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(work);
    expect(u32[counter >>> 2]).toBe(4 * iterations + 2000);
    expect(mutex.holder()).toBe(0);
    heap.free(counter);
    heap.check();
    heap.detach();
  });

  it('serialises a lock-based backend: 4 workers churn on basic without corrupting it', async () => {
    const heap = GlobalAllocator.create({ heapBytes: 16 * MiB });
    await Promise.all(
      Array.from({ length: 4 }, (_, index) => pool.run(index, { kind: 'churn', buffer: heap.buffer, seed: index, iterations: 5000, slots: 32, maxSize: 4096 })),
    );
    expect(heap.stats().contendedLockAcquisitions).toBeGreaterThanOrEqual(0);
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it('gives up after the timeout with an error naming the lock and its holder', async () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB, lockTimeoutMs: 300 });
    const signal = new SharedArrayBuffer(8);
    const words = new Int32Array(signal);
    const held = pool.run(0, { kind: 'hold-lock', buffer: heap.buffer, lockIndex: LockIndex.heap, signal, mode: 'release-on-signal' });
    waitForWord(words, 0);
    const started = performance.now();
    let caught: unknown;
    try {
      heap.malloc(16);
    } catch (error) {
      caught = error;
    }
    const waited = performance.now() - started;
    expect(caught).toBeInstanceOf(AllocError);
    const error = caught as AllocError;
    expect(error.kind).toBe('LockTimeout');
    expect(error.message).toMatch(/lock 'heap' not acquired within 300 ms: held by thread \d+ \(Node threadId \d+, active\)/);
    expect(waited).toBeGreaterThanOrEqual(250);
    expect(waited).toBeLessThan(10_000);
    Atomics.store(words, 1, 1);
    Atomics.notify(words, 1);
    await expect(held).resolves.toBe('released');
    // Once released, the heap works and is intact.
    const address = heap.malloc(16);
    expect(address).not.toBe(0);
    heap.free(address);
    heap.check();
    heap.detach();
  });

  it('is poisoned when its holder dies, so nobody works on what it guards until it is repaired', async () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB, lockTimeoutMs: 60_000 });
    const signal = new SharedArrayBuffer(8);
    const worker = spawnKitWorker();
    heap.watchWorker(worker);
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    worker.postMessage({ id: 1, task: { kind: 'hold-lock', buffer: heap.buffer, lockIndex: LockIndex.heap, signal, mode: 'exit-holding' } });
    await exited;
    // watchWorker released the dead thread's slot, poisoned the lock it held, rebuilt the
    // basic heap's structures from its headers and lifted the poison.
    expect(heap.attachedThreads()).toBe(1);
    expect(heap.recoveryFigures()).toMatchObject({ succeeded: 1, failed: 0 });
    const started = performance.now();
    heap.free(heap.malloc(8));
    expect(performance.now() - started).toBeLessThan(5_000);
    heap.check();
  });

  it('reports a worker task failure with its AllocError kind', async () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB, maxThreads: 1 });
    const failure = pool.run(0, { kind: 'churn', buffer: heap.buffer, seed: 1, iterations: 1, slots: 1, maxSize: 8 });
    await expect(failure).rejects.toBeInstanceOf(WorkerTaskError);
    await expect(failure).rejects.toMatchObject({ kind: 'ThreadLimit' });
    heap.detach();
  });
});
