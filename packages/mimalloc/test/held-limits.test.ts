/**
 * Delayed page reuse with honest limits (issue #12): held pages are counted in pages and
 * bytes; a program of one thread that never calls `quiescent()` does not run out of memory
 * with nothing live; and when another attached thread that never reaches a quiescent point
 * is what keeps held pages back, the allocation fails and the figures name that thread.
 */

import { afterEach, describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';

import { heapReport, mimallocBackend, statsTable } from '../src/index.js';

const open: GlobalAllocator[] = [];
afterEach(() => {
  for (const heap of open.splice(0)) heap.detach();
});

/** 200,000 blocks of 256 bytes allocated, then all freed: 51 MB of pages emptied and held. */
function churn(heap: GlobalAllocator): void {
  const blocks: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    const block = heap.malloc(256);
    expect(block).not.toBe(0);
    blocks.push(block);
  }
  for (const block of blocks) heap.free(block);
}

function heapOf(): GlobalAllocator {
  const heap = GlobalAllocator.create({ backend: mimallocBackend, options: { delayedPageReuse: true }, heapBytes: 64 * MiB });
  open.push(heap);
  return heap;
}

describe('delayed page reuse limits', () => {
  it('counts the held pages in pages and bytes, per heap and in all', () => {
    const heap = heapOf();
    churn(heap);
    const report = heapReport(heap);
    const mine = report.threads.find((thread) => thread.threadId === heap.threadId)!;
    expect(report.held.pages).toBeGreaterThan(700);
    expect(mine.heldPages).toBe(report.held.pages);
    expect(mine.heldBytes).toBe(report.held.bytes);
    expect(report.held.bytes).toBeGreaterThanOrEqual(200_000 * 256);
    expect(heap.usedBytes()).toBe(0);
    heap.check();
  });

  it('lets a single thread that never calls quiescent() allocate everything back', () => {
    const heap = heapOf();
    churn(heap);
    expect(heap.usedBytes()).toBe(0);
    const big = heap.malloc(40 * MiB);
    expect(big).not.toBe(0);
    heap.check();
    heap.free(big);
    heap.check();
  });

  it('names the thread that holds the pages back, and allocates once it passed a quiescent point', () => {
    for (const release of ['quiescent', 'idle', 'detach'] as const) {
      const heap = heapOf();
      const reader = GlobalAllocator.attachSync(heap.buffer, { backends: [mimallocBackend] });
      churn(heap);
      // The reader never passes a quiescent point: the pages stay held, the heap is full.
      expect(heap.malloc(40 * MiB)).toBe(0);
      const report = heapReport(heap);
      expect(report.held.heldBackBy).toContain(reader.threadId);
      expect(statsTable(heap)).toMatch(new RegExp(`held back by thread .*${reader.threadId}`));
      heap.check();
      if (release === 'quiescent') reader.quiescent();
      else if (release === 'idle') reader.idle();
      else reader.detach();
      const big = heap.malloc(40 * MiB);
      expect(big, release).not.toBe(0);
      heap.free(big);
      if (release !== 'detach') reader.detach();
      heap.check();
    }
  });
});
