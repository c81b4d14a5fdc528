import { GlobalAllocator, MiB } from '@heaplab/core';
import { describe, expect, it } from 'vitest';

import { collect, mimallocBackend } from '../src/index.js';
import { binOfSize } from '../src/size-classes.js';

/** Bytes of one small page: what a sample at each page take can miss at most, per bin. */
const SMALL_PAGE_BYTES = 64 * 1024;

describe('peakUsedBytes', () => {
  it('sees a high point reached on page slots that earlier, emptier pages had used', () => {
    const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 32 * MiB });
    // Phase 1: one small block in each of 20 bins, so one segment has 20 pages in use, then
    // all but one freed: the pages go, their slots stay in the segment.
    const sizes: number[] = [];
    const bins = new Set<number>();
    for (let size = 8; sizes.length < 20; size += 8) {
      if (!bins.has(binOfSize(size))) {
        bins.add(binOfSize(size));
        sizes.push(size);
      }
    }
    const phase1 = sizes.map((size) => heap.malloc(size));
    for (const block of phase1.slice(1)) heap.free(block);
    collect(heap, true);
    const before = heap.stats().peakUsedBytes;
    expect(before).toBeLessThan(20 * 1024);
    // Phase 2: fewer pages than phase 1 had, but full ones.
    const blocks: number[] = [];
    for (let i = 0; i < 1100; i++) blocks.push(heap.malloc(1024));
    const livePeak = 1100 * 1024;
    for (const block of blocks) heap.free(block);
    const { peakUsedBytes, peakUsedSampled, usedBytes } = heap.stats();
    expect(peakUsedSampled).toBe(true);
    expect(usedBytes).toBeLessThan(before + 1);
    expect(peakUsedBytes).toBeGreaterThanOrEqual(livePeak - SMALL_PAGE_BYTES);
    expect(peakUsedBytes).toBeLessThanOrEqual(livePeak + before);
    heap.check();
    heap.free(phase1[0]!);
    heap.detach();
  });

  it('misses little of a growth over many pages, though it samples only every so many takes', () => {
    const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 64 * MiB });
    // About 320 small pages of 1 KiB blocks: samples come at most 1/32 of the pages apart.
    const blocks: number[] = [];
    for (let i = 0; i < 20_000; i++) blocks.push(heap.malloc(1024));
    const livePeak = blocks.length * 1024;
    for (const block of blocks) heap.free(block);
    const { peakUsedBytes } = heap.stats();
    expect(peakUsedBytes).toBeGreaterThanOrEqual(livePeak * (1 - 1 / 32) - 2 * SMALL_PAGE_BYTES);
    expect(peakUsedBytes).toBeLessThanOrEqual(livePeak);
    heap.check();
    heap.detach();
  });
});
