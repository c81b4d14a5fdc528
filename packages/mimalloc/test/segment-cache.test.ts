import { AllocError, GlobalAllocator, MiB } from '@heaplab/core';
import { describe, expect, it } from 'vitest';

import { collect, heapReport, mimallocBackend, mimallocOf } from '../src/index.js';
import { HP_SEGMENT_CACHE } from '../src/layout.js';
import { MiWorker } from './mi-workers.js';

function heapOf(bytes = 32 * MiB): GlobalAllocator {
  return GlobalAllocator.create({ backend: mimallocBackend, heapBytes: bytes });
}

function events(heap: GlobalAllocator): { segmentsAllocated: number; segmentsFreed: number } {
  return heapReport(heap).threads.find((thread) => thread.threadId === heap.threadId)!.events;
}

describe('the segment cache (one empty segment per heap)', () => {
  it('keeps the last emptied segment, so a block that comes and goes takes no new segment', () => {
    const heap = heapOf();
    // 1 MiB blocks live in large pages, one per segment, never retired.
    heap.free(heap.malloc(MiB));
    expect(heapReport(heap).segments.large).toBe(1);
    heap.check();
    const before = events(heap);
    for (let i = 0; i < 50; i++) heap.free(heap.malloc(MiB));
    expect(events(heap)).toMatchObject({ segmentsAllocated: before.segmentsAllocated, segmentsFreed: before.segmentsFreed });
    heap.check();
    // A forced collect gives it back.
    collect(heap, true);
    expect(heapReport(heap).segments.large).toBe(0);
    expect(heap.stats().usedBytes).toBe(0);
    heap.check();
    heap.detach();
  });

  it('gives the cached segment back when another kind is needed, and when the heap is full', () => {
    const heap = heapOf(16 * MiB);
    heap.free(heap.malloc(MiB));
    expect(heapReport(heap).segments.large).toBe(1);
    // A small block needs a small segment: the large one goes back to the pool first.
    const small = heap.malloc(64);
    expect(heapReport(heap).segments).toMatchObject({ small: 1, large: 0 });
    heap.free(small);
    // The small segment is cached now; a huge block as large as the whole arena still fits.
    expect(heapReport(heap).segments.small).toBe(1);
    const whole = heap.malloc(heap.stats().totalBytes - 64 * 1024);
    expect(whole).not.toBe(0);
    heap.free(whole);
    heap.check();
    heap.detach();
  });

  it("does not make another thread's allocation fail: a forced collect takes every cache", () => {
    // Three segments of arena: the idle thread's cache is one of them.
    const heap = heapOf(16 * MiB);
    const idle = GlobalAllocator.attachSync(heap.buffer, { backends: [mimallocBackend] });
    // A medium block (its page is freed at once, not retired) and a large one.
    for (const [size, kind] of [
      [100_000, 'medium'],
      [MiB, 'large'],
    ] as const) {
      idle.free(idle.malloc(size));
      expect(heapReport(heap).segments[kind]).toBe(1);
      expect(heap.stats().usedBytes).toBe(0);
      // A huge block as large as the arena allows, while the idle thread stays attached.
      const whole = heap.malloc(heap.stats().totalBytes - 64 * 1024);
      expect(whole).not.toBe(0);
      expect(heapReport(heap).segments[kind]).toBe(0);
      heap.free(whole);
      heap.check();
    }
    // Paged allocations too: fill the arena with large pages (one 2 MiB block each) while
    // the idle thread holds a cached segment again.
    idle.free(idle.malloc(MiB));
    const large: number[] = [];
    for (let block = heap.malloc(2 * MiB); block !== 0; block = heap.malloc(2 * MiB)) large.push(block);
    expect(heapReport(heap).segments).toMatchObject({ large: large.length, free: 0 });
    for (const block of large) heap.free(block);
    heap.check();
    idle.detach();
    heap.detach();
  });

  it('survives forced collects in one thread while other threads fill their caches and detach', async () => {
    const heap = heapOf(64 * MiB);
    const workers = [new MiWorker(), new MiWorker(), new MiWorker()];
    try {
      await Promise.all([
        workers[0]!.run({ kind: 'cache-and-detach', buffer: heap.buffer, rounds: 400 }),
        workers[1]!.run({ kind: 'cache-and-detach', buffer: heap.buffer, rounds: 400 }),
        workers[2]!.run({ kind: 'forced-collects', buffer: heap.buffer, rounds: 2000 }),
      ]);
    } finally {
      await Promise.all(workers.map((worker) => worker.terminate()));
    }
    heap.check();
    // No segment was lost or given back twice: all of them are free again.
    collect(heap, true);
    expect(heapReport(heap).segments).toMatchObject({ small: 0, medium: 0, large: 0, huge: 0, abandoned: 0 });
    expect(heap.stats().largestFreeBlock).toBe(heap.totalBytes());
    heap.check();
    heap.detach();
  }, 60_000);

  it('is given back when its thread detaches', () => {
    const heap = heapOf();
    const other = GlobalAllocator.attachSync(heap.buffer, { backends: [mimallocBackend] });
    other.free(other.malloc(MiB));
    expect(heapReport(heap).segments.large).toBe(1);
    other.detach();
    expect(heapReport(heap).segments.large).toBe(0);
    heap.check();
    heap.detach();
  });

  it('is verified by check(): a cache word naming a segment with pages in use is corruption', () => {
    const heap = heapOf();
    const block = heap.malloc(64);
    const u32 = heap.memory.u32;
    const word = (mimallocOf(heap).context.heap + HP_SEGMENT_CACHE) >>> 2;
    u32[word] = block - (block % (4 * MiB));
    expect(() => heap.check()).toThrow(AllocError);
    expect(() => heap.check()).toThrow(/cached segment but has 1 pages in use/);
    u32[word] = 0;
    heap.check();
    heap.free(block);
    heap.detach();
  });
});
