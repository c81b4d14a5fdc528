import { GlobalAllocator, MiB } from '@heaplab/core';
import { describe, expect, it } from 'vitest';

import { heapReport, mimallocBackend } from '../src/index.js';
import { RETIRE_CYCLES } from '../src/page.js';

function heapOf(): GlobalAllocator {
  return GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 16 * MiB });
}

function freedPages(heap: GlobalAllocator): number {
  return heapReport(heap).threads.find((thread) => thread.threadId === heap.threadId)!.events.pagesFreed;
}

/** Slow-path calls: requests above the direct table (1 KiB) always take the slow path. */
function slowPathCalls(heap: GlobalAllocator, count: number): void {
  const block = heap.malloc(2000);
  for (let i = 1; i < count; i++) heap.free(heap.malloc(2000));
  heap.free(block);
}

describe('retired pages', () => {
  it('keeps the emptied only page of a bin for RETIRE_CYCLES slow-path calls, then frees it', () => {
    const heap = heapOf();
    heap.free(heap.malloc(3000));
    expect(heapReport(heap).pages.retired).toBe(1);
    const freed = freedPages(heap);
    // The 2000-byte bin's own page is retired too when its last block goes; count only 3000's.
    slowPathCalls(heap, RETIRE_CYCLES - 2);
    expect(freedPages(heap)).toBe(freed);
    slowPathCalls(heap, 4);
    expect(freedPages(heap)).toBe(freed + 1);
    heap.check();
    heap.detach();
  });

  it('stops retiring a page that serves a block again', () => {
    const heap = heapOf();
    heap.free(heap.malloc(3000));
    const block = heap.malloc(3000);
    const freed = freedPages(heap);
    slowPathCalls(heap, 2 * RETIRE_CYCLES);
    // The 2000-byte page may be freed; the 3000-byte page, in use, is not.
    expect(heap.usableSize(block)).toBeGreaterThanOrEqual(3000);
    expect(freedPages(heap) - freed).toBeLessThanOrEqual(1);
    heap.free(block);
    expect(heapReport(heap).pages.retired).toBeGreaterThanOrEqual(1);
    heap.check();
    heap.detach();
  });
});
