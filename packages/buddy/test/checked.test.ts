/**
 * Checked mode of the buddy backend: the operation that touches a damaged structure reports
 * it (HeapCorrupted), where the default mode, whose checks only keep it from writing outside
 * free blocks, goes on until `check()`. The damage here is of the kind the default checks
 * let through: links that name real free blocks of the right order, but the wrong ones.
 */

import { GlobalAllocator, hex, MiB } from '@heaplab/core';
import { expectAllocError } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { buddyBackend } from '../src/index.js';
import { FB_MAP_START, FB_PREV } from '../src/layout.js';

/**
 * A heap with eight 1 KiB blocks side by side and the odd ones but the last freed: list 10
 * holds a[5] -> a[3] -> a[1], each with a live buddy below it. Without a thread cache
 * (`tcache: false`; checked mode has none anyway): the frees must reach the buddy lists, and
 * the default mode's run is about what the bare algorithm lets through.
 */
function heapWithList(checked: boolean | undefined) {
  const heap = GlobalAllocator.create({
    backend: buddyBackend,
    options: { tcache: false },
    heapBytes: 4 * MiB,
    ...(checked === undefined ? {} : { checked }),
  });
  const a = Array.from({ length: 8 }, () => heap.malloc(1000));
  expect(a.map((address) => address - a[0]!)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => i * 1024));
  for (const i of [1, 3, 5]) heap.free(a[i]!);
  heap.check();
  return { heap, a, u32: heap.memory.u32, u8: heap.memory.u8 };
}

describe('buddy in checked mode', () => {
  it('reports a buddy whose back link names another free block of its list, at the free that merges it', () => {
    for (const checked of [false, true]) {
      const { heap, a, u32 } = heapWithList(checked);
      // a[3]'s previous block is a[5]; make it say a[1], a free block of the same order.
      u32[(a[3]! + FB_PREV) >>> 2] = a[1]!;
      if (checked) {
        const error = expectAllocError(() => heap.free(a[2]!), 'HeapCorrupted');
        expect(error.message).toContain(hex(a[1]!));
        expect(heap.usableSize(a[2]!)).toBe(1024);
      } else {
        // Without checks the link passes (it names a free block of order 10), the merge
        // goes through, and only check() sees the list it left behind.
        heap.free(a[2]!);
        expectAllocError(() => heap.check(), 'HeapCorrupted');
      }
      heap.detach();
    }
  });

  it('reports a list head whose back link is not 0, at the allocation that takes it', () => {
    for (const checked of [false, true]) {
      const { heap, a, u32 } = heapWithList(checked);
      u32[(a[5]! + FB_PREV) >>> 2] = a[3]!;
      if (checked) {
        expectAllocError(() => heap.malloc(1000), 'HeapCorrupted');
      } else {
        expect(heap.malloc(1000)).toBe(a[5]);
        expectAllocError(() => heap.check(), 'HeapCorrupted');
      }
      heap.detach();
    }
  });

  it("reports a merged buddy that records another pool's map", () => {
    const { heap, a, u32 } = heapWithList(true);
    u32[(a[1]! + FB_MAP_START) >>> 2] = u32[(a[1]! + FB_MAP_START) >>> 2]! + 16;
    expect(expectAllocError(() => heap.free(a[0]!), 'HeapCorrupted').message).toContain('records map');
    heap.detach();
  });

  it('reports a live block whose size and alignment digits are broken, at its free and its realloc', () => {
    const { heap, a, u8 } = heapWithList(true);
    const block = heap.malloc(3000);
    const entry = heap.arenaStart + (block - heap.arenaStart) / 16;
    u8[entry + 1] = 0x7f;
    u8[entry + 2] = 0x7f; // a slack beyond the 4 KiB block
    expectAllocError(() => heap.realloc(block, 2000), 'HeapCorrupted');
    expectAllocError(() => heap.free(block), 'HeapCorrupted');
    heap.free(a[0]!);
    heap.detach();
  });

  it('is chosen by HEAPLAB_CHECKED=1 when the config does not say', () => {
    const saved = process.env['HEAPLAB_CHECKED'];
    process.env['HEAPLAB_CHECKED'] = '1';
    try {
      const { heap, a, u32 } = heapWithList(undefined);
      u32[(a[3]! + FB_PREV) >>> 2] = a[1]!;
      expectAllocError(() => heap.free(a[2]!), 'HeapCorrupted');
      heap.detach();
    } finally {
      if (saved === undefined) delete process.env['HEAPLAB_CHECKED'];
      else process.env['HEAPLAB_CHECKED'] = saved;
    }
  });
});
