import { describe, expect, it } from 'vitest';

import { GlobalAllocator, KiB, MiB, POISON_BYTE, sequenceReached, spawnWorker } from '../src/index.js';
import { expectAllocError } from '@heaplab/test-kit';
import { BUCKETS, type QsbrWorkerInput, type QsbrWorkerResult } from './workers/qsbr-worker.js';

const workerEntry = new URL('./workers/qsbr-worker.ts', import.meta.url);

function startWorker(input: QsbrWorkerInput): Promise<QsbrWorkerResult> {
  const worker = spawnWorker(workerEntry, input as unknown as Record<string, unknown>);
  return new Promise((resolve, reject) => {
    worker.once('message', (reply: { ok: boolean; result?: QsbrWorkerResult; message?: string }) =>
      reply.ok ? resolve(reply.result!) : reject(new Error(reply.message)),
    );
    worker.once('error', reject);
  });
}

/** Runs one writer and two lock-free readers on a table for `millis`; returns their results. */
async function runTable(delayed: boolean, millis: number) {
  const heap = GlobalAllocator.create({ heapBytes: 64 * MiB, poisonFreed: true });
  const table = heap.calloc(BUCKETS, 4);
  // The main thread only waits while the workers run: it holds nothing back.
  heap.idle();
  const control = new SharedArrayBuffer(16);
  const base = { buffer: heap.buffer, table, control, delayed };
  const workers = [
    startWorker({ ...base, role: 'writer', seed: 1 }),
    startWorker({ ...base, role: 'reader', seed: 2 }),
    startWorker({ ...base, role: 'reader', seed: 3 }),
  ];
  // Time the run from when all three are attached: a cold start can take a second.
  const words = new Int32Array(control);
  const deadline = Date.now() + 30_000;
  while (Atomics.load(words, 3) < workers.length && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => setTimeout(resolve, millis));
  Atomics.store(new Int32Array(control), 0, 1);
  const [writer, ...readers] = await Promise.all(workers);
  // Retire what is left, then everything must come back.
  for (let bucket = 0; bucket < BUCKETS; bucket++) {
    const entry = heap.memory.u32[(table >>> 2) + bucket]!;
    if (entry !== 0) heap.free(entry);
  }
  heap.free(table);
  // Reach the goals of what the writer left behind: advance, pass a quiescent point, free.
  heap.resume();
  heap.processDelayed();
  heap.quiescent();
  heap.processDelayed();
  return { heap, writer: writer!, readers };
}

describe('QSBR sequences', () => {
  it('compare with wrap-around', () => {
    expect(sequenceReached(5, 3)).toBe(true);
    expect(sequenceReached(3, 5)).toBe(false);
    expect(sequenceReached(-0x7fffffff, 0x7ffffffd)).toBe(true);
    expect(sequenceReached(0x7ffffffd, -0x7fffffff)).toBe(false);
  });
});

describe('freeDelayed', () => {
  it('keeps a block intact until every thread passes a quiescent point, then frees it', () => {
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB, poisonFreed: true });
    const reader = GlobalAllocator.attachSync(heap.buffer);
    const block = heap.malloc(100);
    heap.memory.u8.fill(0x42, block, block + 100);
    heap.freeDelayed(block);
    expect(heap.stats().delayedFree.pendingBlocks).toBe(1);
    // Small frees share a deferred goal: processing advances the write sequence to it...
    expect(heap.processDelayed()).toBe(0);
    heap.quiescent();
    // ...and the reader has not passed a quiescent point since: nothing may be freed.
    expect(heap.processDelayed()).toBe(0);
    expect(heap.memory.u8[block + 50]).toBe(0x42);
    expect(heap.usableSize(block)).toBeGreaterThanOrEqual(100);
    reader.quiescent();
    expect(heap.processDelayed()).toBe(1);
    expect(heap.memory.u8[block + 50]).toBe(POISON_BYTE);
    expectAllocError(() => heap.free(block), 'NotAllocated');
    expect(heap.stats().delayedFree).toMatchObject({ pendingBlocks: 0, heldBytes: 0 });
    reader.detach();
    heap.detach();
  });

  it('names the threads holding its oldest waiting block back in stats()', () => {
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB });
    const reader = GlobalAllocator.attachSync(heap.buffer);
    const idle = GlobalAllocator.attachSync(heap.buffer);
    idle.idle();
    expect(heap.stats().delayedFree).toMatchObject({ oldestGoal: 0, heldBackBy: [] });
    const block = heap.malloc(100);
    heap.freeDelayed(block);
    // A small free's goal waits for the write sequence to advance: nobody to name yet.
    const waiting = heap.stats().delayedFree;
    expect(waiting.oldestGoal).not.toBe(0);
    expect(waiting.heldBackBy).toEqual([]);
    // Processing advances it; then both online threads are behind it, the idle one is not.
    expect(heap.processDelayed()).toBe(0);
    expect(heap.stats().delayedFree.heldBackBy).toEqual([heap.threadId, reader.threadId]);
    heap.quiescent();
    expect(heap.stats().delayedFree.heldBackBy).toEqual([reader.threadId]);
    reader.quiescent();
    expect(heap.stats().delayedFree.heldBackBy).toEqual([]);
    expect(heap.processDelayed()).toBe(1);
    expect(heap.stats().delayedFree).toMatchObject({ pendingBlocks: 0, oldestGoal: 0, heldBackBy: [] });
    idle.detach();
    reader.detach();
    heap.detach();
  });

  it('refuses bad addresses like free does, without recording them', () => {
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB });
    const block = heap.malloc(64);
    expectAllocError(() => heap.freeDelayed(block + 8), 'NotAllocated');
    expectAllocError(() => heap.freeDelayed(3), 'InvalidParam');
    heap.freeDelayed(block);
    expect(heap.stats().delayedFree.pendingBlocks).toBe(1);
    // A second delayed free of a block still waiting is a double free.
    expectAllocError(() => heap.freeDelayed(block), 'NotAllocated');
    heap.processDelayed();
    heap.quiescent();
    expect(heap.processDelayed()).toBe(1);
    expectAllocError(() => heap.freeDelayed(block), 'NotAllocated');
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it('never processes inside freeDelayed; a due batch runs at the next allocation', () => {
    const limit = 64 * KiB;
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB, delayedFreeLimitBytes: limit });
    const blocks = Array.from({ length: 10 }, () => heap.malloc(16 * KiB));
    for (const block of blocks) heap.freeDelayed(block);
    // Above the limit, but freeDelayed itself freed nothing.
    expect(heap.stats().delayedFree.pendingBlocks).toBe(10);
    heap.quiescent();
    const next = heap.malloc(8);
    expect(heap.stats().delayedFree.pendingBlocks).toBe(0);
    heap.free(next);
    expect(heap.usedBytes()).toBe(0);
    heap.detach();
  });

  it('keeps held memory near the limit under a writer freeing large blocks quickly', () => {
    const limit = 256 * KiB;
    const blockBytes = 96 * KiB;
    const heap = GlobalAllocator.create({ heapBytes: 32 * MiB, delayedFreeLimitBytes: limit });
    const reader = GlobalAllocator.attachSync(heap.buffer);
    let current = heap.malloc(blockBytes);
    for (let i = 0; i < 2000; i++) {
      const fresh = heap.malloc(blockBytes);
      expect(fresh).not.toBe(0);
      heap.freeDelayed(current);
      current = fresh;
      heap.quiescent();
      reader.quiescent();
    }
    const peak = heap.stats().delayedFree.peakHeldBytes;
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(limit + heap.usableSize(current));
    heap.free(current);
    reader.detach();
    heap.processDelayed();
    expect(heap.usedBytes()).toBe(0);
    heap.detach();
  });

  it('lets a thread that stops passing quiescent points hold reclamation back, until it detaches', async () => {
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB });
    const control = new SharedArrayBuffer(16);
    const words = new Int32Array(control);
    const stalled = startWorker({ role: 'stall', buffer: heap.buffer, table: 0, control, delayed: true, seed: 1 });
    const deadline = Date.now() + 20_000;
    while (Atomics.load(words, 1) === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const blocks = Array.from({ length: 50 }, () => heap.malloc(1000));
    for (const block of blocks) heap.freeDelayed(block);
    heap.processDelayed();
    heap.quiescent();
    expect(heap.processDelayed()).toBe(0);
    // Nothing breaks meanwhile: the heap keeps working and stays consistent.
    const other = heap.malloc(5000);
    heap.free(other);
    heap.check();
    expect(heap.stats().delayedFree.pendingBlocks).toBe(50);
    Atomics.store(words, 2, 1);
    Atomics.notify(words, 2);
    await stalled;
    expect(heap.processDelayed()).toBe(50);
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it('hands a detaching thread’s pending frees to the others', () => {
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB });
    const leaver = GlobalAllocator.attachSync(heap.buffer);
    const reader = GlobalAllocator.attachSync(heap.buffer);
    const blocks = Array.from({ length: 20 }, () => leaver.malloc(500));
    for (const block of blocks) leaver.freeDelayed(block);
    leaver.processDelayed();
    leaver.quiescent();
    leaver.detach();
    expect(heap.stats().delayedFree.orphanHeldBytes).toBeGreaterThan(0);
    heap.quiescent();
    expect(heap.processDelayed()).toBe(0);
    reader.quiescent();
    expect(heap.processDelayed()).toBe(20);
    expect(heap.stats().delayedFree.orphanHeldBytes).toBe(0);
    reader.detach();
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it('an idle thread holds nothing back', () => {
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB });
    const sleeper = GlobalAllocator.attachSync(heap.buffer);
    sleeper.idle();
    const block = heap.malloc(64);
    heap.freeDelayed(block);
    heap.processDelayed();
    heap.quiescent();
    expect(heap.processDelayed()).toBe(1);
    sleeper.resume();
    const again = heap.malloc(64);
    heap.freeDelayed(again);
    heap.processDelayed();
    heap.quiescent();
    expect(heap.processDelayed()).toBe(0);
    sleeper.quiescent();
    expect(heap.processDelayed()).toBe(1);
    sleeper.detach();
    heap.detach();
  });
});

describe('a lock-free table in the heap, read by workers while a writer retires entries', () => {
  it('with freeDelayed, no reader ever sees a freed or reused entry', async () => {
    const { heap, writer, readers } = await runTable(true, 1500);
    expect(writer.operations).toBeGreaterThan(100);
    for (const reader of readers) {
      expect(reader.operations).toBeGreaterThan(100);
      expect(reader.errors, reader.firstError ?? '').toBe(0);
    }
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it('with an immediate free, readers do catch freed or reused entries (the test can fail)', async () => {
    const { heap, readers } = await runTable(false, 1500);
    const errors = readers.reduce((sum, reader) => sum + reader.errors, 0);
    expect(errors).toBeGreaterThan(0);
    heap.check();
    heap.detach();
  });
});
