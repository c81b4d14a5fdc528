/**
 * The owner never waits without bound for a remote free stalled between its two steps
 * (after DELAYED_FREEING, before the block reaches the owner's delayed list): it keeps
 * allocating and its periodic collect returns; nothing is lost when the producer resumes;
 * and the owner's complete drain (detach) waits for the producer, then finishes.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';

import { mimallocBackend } from '../src/index.js';
import { DELAYED_FREEING, USE_DELAYED_FREE } from '../src/layout.js';
import { delayedState } from './helpers.js';
import { MiWorker } from './mi-workers.js';
import { until } from './helpers.js';

describe('a remote free stalled between its two steps', () => {
  it("does not stall the owner, loses nothing, and the owner's detach completes once it resumes", async () => {
    const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 32 * MiB });
    const owner = new MiWorker();
    const producer = new MiWorker();
    const signal = new SharedArrayBuffer(8);
    const words = new Int32Array(signal);
    try {
      // The owner fills more than a page of 64-byte blocks, so its first page is full.
      const blocks = await owner.run<number[]>({ kind: 'owner-fill', buffer: heap.buffer, count: 1100, size: 64 });
      const victim = blocks[0]!;
      expect(delayedState(heap, victim)).toBe(USE_DELAYED_FREE);
      const liveBefore = heap.stats().liveBlocks;

      const freed = producer.run<string>({ kind: 'stalled-free', buffer: heap.buffer, signal, address: victim });
      await until(() => Atomics.load(words, 0) === 1, 'the producer stalls');
      expect(delayedState(heap, victim)).toBe(DELAYED_FREEING);

      // The owner keeps allocating through its slow path and collects: none of it waits.
      const churned = await owner.run<number>({ kind: 'owner-churn', count: 4000, size: 64 });
      expect(churned).toBe(4000);
      expect(delayedState(heap, victim)).toBe(DELAYED_FREEING);

      // A complete drain must wait for the producer: the owner's detach does not finish...
      let detachDone = false;
      const detached = owner.run<number>({ kind: 'owner-detach' }).then((ms) => {
        detachDone = true;
        return ms;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(detachDone).toBe(false);
      // ...until the producer resumes, pushes its block and leaves DELAYED_FREEING.
      Atomics.store(words, 1, 1);
      Atomics.notify(words, 1);
      expect(await freed).toBe('freed');
      const waited = await detached;
      expect(waited).toBeGreaterThanOrEqual(250);

      // Nothing was lost: the stalled block was freed, the rest are still live and intact.
      expect(heap.stats().liveBlocks).toBe(liveBefore - 1);
      heap.check();
      for (const block of blocks.slice(1)) heap.free(block);
      expect(heap.stats().liveBlocks).toBe(0);
      expect(heap.usedBytes()).toBe(0);
      heap.check();
    } finally {
      Atomics.store(words, 1, 1);
      Atomics.notify(words, 1);
      await owner.terminate();
      await producer.terminate();
      heap.detach();
    }
  }, 60_000);
});
