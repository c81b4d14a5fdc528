/**
 * A thread killed while it holds the segment lock (`segments`, the backend's own; issue #12): real
 * workers end their thread at each named step of a segment allocation, a release (of a
 * paged segment and of a huge block), a cached segment given back, a reclaim of an
 * abandoned segment, and addMemory. `watchWorker` poisons the lock and calls `recover`,
 * which must leave a heap that passes check(), keeps every live block, and fills and
 * empties again.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';

import { collect, heapReport, type MiStep, mimallocBackend } from '../src/index.js';
import { runDying } from './mi-workers.js';
import type { DieAtTask } from './workers/mi-worker.js';

interface Case {
  name: string;
  step: MiStep;
  /** Prepares the heap (the main thread's blocks); returns the task's fields. */
  task: (heap: GlobalAllocator) => Pick<DieAtTask, 'operation' | 'addresses' | 'count' | 'size'>;
  initBytes?: number;
}

const ALLOC_STEPS: MiStep[] = ['segment:alloc:taken', 'segment:alloc:formatted', 'segment:alloc:mapped'];
const RELEASE_STEPS: MiStep[] = ['segment:release:disowned', 'segment:release:unmapped'];

const CASES: Case[] = [
  ...ALLOC_STEPS.map(
    (step): Case => ({ name: `a small segment's allocation (${step})`, step, task: () => ({ operation: 'malloc', addresses: [], size: 64 }) }),
  ),
  ...ALLOC_STEPS.map(
    (step): Case => ({ name: `a huge block's allocation (${step})`, step, task: () => ({ operation: 'malloc', addresses: [], size: 5 * MiB }) }),
  ),
  // Two 2 MiB blocks (a large page, a segment, each): the first emptied segment goes to the
  // cache, the second back to the pool.
  ...RELEASE_STEPS.map(
    (step): Case => ({ name: `a segment's release (${step})`, step, task: () => ({ operation: 'free-all', addresses: [], count: 2, size: 2 * MiB }) }),
  ),
  ...RELEASE_STEPS.map(
    (step): Case => ({ name: `a huge block's free (${step})`, step, task: () => ({ operation: 'free-all', addresses: [], count: 1, size: 5 * MiB }) }),
  ),
  {
    name: 'a cached segment given back by a forced collect',
    step: 'segment:cache:tagged',
    task: (heap) => {
      heap.free(heap.malloc(2 * MiB));
      expect(heapReport(heap).segments.large).toBe(2);
      return { operation: 'collect', addresses: [] };
    },
  },
  {
    name: 'a reclaim of an abandoned segment',
    step: 'segment:reclaim:popped',
    task: (heap) => {
      // Another thread leaves live blocks of 200 bytes behind: its segment is abandoned.
      const leaver = GlobalAllocator.attachSync(heap.buffer, { backends: [mimallocBackend] });
      for (let i = 0; i < 10; i++) leaver.malloc(200);
      leaver.detach();
      expect(heapReport(heap).segments.abandoned).toBe(1);
      return { operation: 'malloc', addresses: [], size: 200 };
    },
  },
  {
    name: 'addMemory',
    step: 'segment:add:pooled',
    initBytes: 12 * MiB,
    task: (heap) => ({ operation: 'add-memory', addresses: [heap.arenaStart + 12 * MiB, 4 * MiB] }),
  },
];

describe('a worker killed holding the segment lock', () => {
  for (const entry of CASES) {
    it(`is repaired by recover(): ${entry.name}`, async () => {
      const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 16 * MiB, initBytes: entry.initBytes });
      // Live blocks of the main thread, which must survive intact.
      const kept = [heap.malloc(100), heap.malloc(3000), heap.malloc(MiB)];
      kept.forEach((block, i) => {
        heap.memory.u32.fill(0xabc0 + i, block >>> 2, (block >>> 2) + 20);
      });
      const task = entry.task(heap);
      const liveBefore = heap.stats().liveBlocks;
      const outcome = await runDying(heap, { kind: 'die-at', buffer: heap.buffer, step: entry.step, ...task });
      expect(outcome.died).toBe(true);
      if (!outcome.died) return;
      expect(outcome.report.failed).toEqual([]);
      expect(outcome.report.recovered).toContain('segments');
      heap.check();
      expect(heap.stats().recovery).toMatchObject({ lostBytes: 0, failed: 0 });
      kept.forEach((block, i) => {
        for (let w = 0; w < 20; w++) expect(heap.memory.u32[(block >>> 2) + w]).toBe(0xabc0 + i);
      });
      // What the dead thread had, it had allocated in its own heap: abandoned, not lost.
      expect(heap.stats().liveBlocks).toBeGreaterThanOrEqual(liveBefore);
      if (task.operation === 'add-memory') {
        // Rolled back: core never recorded the range, and the heap takes it again.
        expect(heap.pools()).toHaveLength(1);
        heap.addMemory(task.addresses[0]!, task.addresses[1]!);
        heap.check();
      }
      // The heap fills and empties: every segment can be taken and given back.
      for (const block of kept) heap.free(block);
      collect(heap, true);
      const filled: number[] = [];
      for (let block = heap.malloc(MiB); block !== 0; block = heap.malloc(MiB)) filled.push(block);
      expect(filled.length).toBeGreaterThanOrEqual(2);
      for (const block of filled) heap.free(block);
      collect(heap, true);
      heap.check();
      // Every segment is free again (a leaked one would show here), but those holding the
      // blocks another thread left behind.
      if (entry.step !== 'segment:reclaim:popped') expect(heap.stats().largestFreeBlock).toBe(heap.totalBytes());
      heap.detach();
    }, 30_000);
  }
});
