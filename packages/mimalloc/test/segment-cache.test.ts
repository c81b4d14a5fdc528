import { AllocError, GlobalAllocator, MiB } from '@heaplab/core';
import { describe, expect, it } from 'vitest';

import { collect, heapReport, mimallocBackend, mimallocOf } from '../src/index.js';
import { HP_SEGMENT_CACHE } from '../src/types.js';

function heapOf(bytes = 32 * MiB): GlobalAllocator {
  return GlobalAllocator.create({ backend: mimallocBackend, heapBytes: bytes });
}

function events(heap: GlobalAllocator): { segmentsAllocated: number; segmentsFreed: number } {
  return heapReport(heap).threads.find((thread) => thread.threadId === heap.threadId)!.events;
}

describe('the segment cache (one empty segment per heap)', () => {
  it('keeps the last emptied segment, so a block that comes and goes takes no new segment', () => {
    const heap = heapOf();
    // 100 KB blocks live in medium pages, the only page of their segment here.
    heap.free(heap.malloc(100_000));
    expect(heapReport(heap).segments.medium).toBe(1);
    heap.check();
    const before = events(heap);
    for (let i = 0; i < 50; i++) heap.free(heap.malloc(100_000));
    expect(events(heap)).toMatchObject({ segmentsAllocated: before.segmentsAllocated, segmentsFreed: before.segmentsFreed });
    heap.check();
    // A forced collect gives it back.
    collect(heap, true);
    expect(heapReport(heap).segments.medium).toBe(0);
    expect(heap.stats().usedBytes).toBe(0);
    heap.check();
    heap.detach();
  });

  it('gives the cached segment back when another kind is needed, and when the heap is full', () => {
    const heap = heapOf(16 * MiB);
    heap.free(heap.malloc(100_000));
    expect(heapReport(heap).segments.medium).toBe(1);
    // A small block needs a small segment: the medium one goes back to the pool first.
    const small = heap.malloc(64);
    expect(heapReport(heap).segments).toMatchObject({ small: 1, medium: 0 });
    heap.free(small);
    // The small segment is cached now; a huge block as large as the whole arena still fits.
    expect(heapReport(heap).segments.small).toBe(1);
    const whole = heap.malloc(heap.stats().totalBytes - 64 * 1024);
    expect(whole).not.toBe(0);
    heap.free(whole);
    heap.check();
    heap.detach();
  });

  it('is given back when its thread detaches', () => {
    const heap = heapOf();
    const other = GlobalAllocator.attachSync(heap.buffer, { backends: [mimallocBackend] });
    other.free(other.malloc(100_000));
    expect(heapReport(heap).segments.medium).toBe(1);
    other.detach();
    expect(heapReport(heap).segments.medium).toBe(0);
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
