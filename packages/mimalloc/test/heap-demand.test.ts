/**
 * mimalloc's smallest heap (`heapBytesNeeded`): a thread owns a 4 MiB segment for each kind
 * of page it uses, so the need grows with threads and block sizes. The figures are checked
 * against the backend itself: one segment less than the need, and the thread finds the heap
 * full for the first block of a kind it has no segment for.
 */

import { AllocError, basicBackend, GlobalAllocator, MiB, minimumHeapBytes } from '@heaplab/core';
import { afterEach, describe, expect, it } from 'vitest';

import { mimallocBackend } from '../src/index.js';

const heaps: GlobalAllocator[] = [];
afterEach(() => {
  for (const heap of heaps.splice(0)) heap.detach();
});

function heapOf(bytes: number): GlobalAllocator {
  const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: bytes });
  heaps.push(heap);
  return heap;
}

describe('mimalloc heap demand', () => {
  it('needs a segment per thread and page kind, and the huge block besides', () => {
    const need = (threads: number, largestBlock: number): number => minimumHeapBytes(mimallocBackend, { threads, largestBlock }) / MiB;
    expect(need(1, 0)).toBe(4);
    expect(need(1, 16 * 1024)).toBe(4);
    expect(need(1, 16 * 1024 + 1)).toBe(8);
    expect(need(2, 32 * 1024)).toBe(16);
    expect(need(3, 999)).toBe(12);
    expect(need(1, 2 * MiB)).toBe(12);
    expect(need(1, 5 * MiB)).toBe(12 + 8);
  });

  it('asks nothing of a locked backend beyond the smallest heap', () => {
    expect(minimumHeapBytes(basicBackend, { threads: 64, largestBlock: 32 * 1024 })).toBe(4 * MiB);
  });

  it('refuses a demand that is not a thread count and a size', () => {
    expect(() => minimumHeapBytes(mimallocBackend, { threads: 0, largestBlock: 8 })).toThrow(AllocError);
    expect(() => minimumHeapBytes(mimallocBackend, { threads: 1, largestBlock: -1 })).toThrow(AllocError);
  });

  it('is what a thread really takes: one segment short, the next kind finds the heap full', () => {
    const blocks = [100, 32 * 1024, 1 * MiB];
    for (let kinds = 1; kinds <= blocks.length; kinds++) {
      const largestBlock = blocks[kinds - 1]!;
      const need = minimumHeapBytes(mimallocBackend, { threads: 1, largestBlock });
      const enough = heapOf(need);
      for (const size of blocks.slice(0, kinds)) expect(enough.malloc(size), `${size} bytes in ${need / MiB} MiB`).not.toBe(0);
      enough.check();
      if (need === 4 * MiB) continue;
      const short = heapOf(need - 4 * MiB);
      for (const size of blocks.slice(0, kinds - 1)) expect(short.malloc(size)).not.toBe(0);
      expect(short.malloc(largestBlock), `${largestBlock} bytes in ${(need - 4 * MiB) / MiB} MiB`).toBe(0);
      short.check();
    }
  });
});
