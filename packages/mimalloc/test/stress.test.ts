/**
 * Heavy cross-thread traffic: rounds of workers swap signed blocks through shared transfer
 * slots (every free verifies the block's contents first), and threads are created and ended
 * round after round, some detaching, some ending without detaching (reclaimed by the main
 * thread), so abandon, reclaim and frees into abandoned pages all run under load.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';

import { collect, heapReport, mimallocBackend } from '../src/index.js';
import { MiWorker } from './mi-workers.js';
import type { StressResult } from './workers/mi-worker.js';

describe('stress: cross-thread swaps with threads created and ended', () => {
  it('loses no block and gives every byte back', async () => {
    const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 96 * MiB });
    const transfer = new SharedArrayBuffer(4 * 64);
    const slots = new Uint32Array(transfer);
    const leftovers: number[] = [];
    let reclaimed = 0;
    let remoteFrees = 0;
    for (let round = 0; round < 3; round++) {
      const workers = [new MiWorker(), new MiWorker(), new MiWorker()];
      const results = await Promise.all(
        workers.map((worker, index) =>
          worker.run<StressResult>({ kind: 'stress', buffer: heap.buffer, transfer, seed: 0x9e37 + round * 31 + index, iterations: 8_000, keepLive: 40 }),
        ),
      );
      for (const result of results) {
        leftovers.push(...result.leftovers);
        remoteFrees += result.remoteFrees;
        reclaimed += result.reclaimed;
      }
      // Workers 1 and 2 detach; worker 0 ends without detaching, and the main thread releases
      // its heap as a dead thread's.
      await Promise.all(workers.slice(1).map((worker) => worker.run({ kind: 'owner-detach' })));
      const dead = workers[0]!.worker.threadId;
      await Promise.all(workers.map((worker) => worker.terminate()));
      expect(heap.releaseThreadsOf(dead).threads).toHaveLength(1);
      expect(heap.attachedThreads()).toBe(1);
      heap.check();
      const report = heapReport(heap);
      expect(report.segments.abandoned).toBeGreaterThan(0);
    }
    expect(remoteFrees).toBeGreaterThan(1000);
    // Later rounds' threads took over segments that earlier threads abandoned.
    expect(reclaimed).toBeGreaterThan(0);
    const u32 = heap.memory.u32;
    for (const block of [...leftovers, ...slots.filter((address) => address !== 0)]) {
      expect(u32[block >>> 2]).toBeGreaterThanOrEqual(8);
      heap.free(block);
    }
    expect(heap.stats().liveBlocks).toBe(0);
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    collect(heap, true);
    const report = heapReport(heap);
    expect(report.segments).toMatchObject({ small: 0, medium: 0, large: 0, huge: 0, abandoned: 0 });
    expect(heap.stats().largestFreeBlock).toBe(heap.totalBytes());
    heap.check();
    heap.detach();
  }, 60_000);
});
