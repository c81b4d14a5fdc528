/**
 * Every power-of-two alignment up to core's `MAX_ALIGN` (1 GiB), size 0 included (issue
 * #12): `alignedAlloc(align, 0)` with an alignment of 4 MiB or more returned a block past its
 * own span, which could never be freed or sized. On a heap large enough to place a block at
 * 1 GiB, each block here is aligned, sized, freed with its own layout, and its memory comes
 * back.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MAX_ALIGN, MiB } from '@heaplab/core';

import { collect, heapReport, mimallocBackend } from '../src/index.js';

describe('alignments up to MAX_ALIGN', () => {
  it('give blocks that are aligned, sized and freed, and whose memory comes back, size 0 included', () => {
    const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 1024 * MiB + 64 * MiB });
    const total = heap.totalBytes();
    for (let align = 1; align <= MAX_ALIGN; align *= 2) {
      for (const size of [0, 1, 4097]) {
        const where = `alignedAlloc(${align}, ${size})`;
        const block = heap.alignedAlloc(align, size);
        expect(block, where).not.toBe(0);
        expect(block % align, where).toBe(0);
        expect(heap.usableSize(block), where).toBeGreaterThanOrEqual(size);
        heap.check();
        heap.dealloc(block, { size, align });
        expect(() => heap.usableSize(block), where).toThrow(/not the start of a live block/);
      }
      collect(heap, true);
      expect(heap.usedBytes(), `align ${align}`).toBe(0);
      expect(heap.stats().largestFreeBlock, `align ${align}: every segment back`).toBe(total);
    }
    expect(heapReport(heap).segments).toMatchObject({ small: 0, medium: 0, large: 0, huge: 0 });
    heap.check();
    heap.detach();
  }, 60_000);
});
