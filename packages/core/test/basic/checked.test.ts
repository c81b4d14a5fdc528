/**
 * Checked mode of the basic backend: the operation that touches a damaged structure reports
 * it (HeapCorrupted), where the default mode would go on until `check()`.
 */

import { describe, expect, it } from 'vitest';

import { basicBackend, GlobalAllocator, hex, MiB } from '../../src/index.js';
import { expectAllocError } from '@heaplab/test-kit';

/**
 * A heap with blocks a, b, c side by side and b freed, so b is a free block between live ones.
 * Without a thread cache (`tcache: false`; checked mode has none anyway): b's free must reach
 * the backend, and the default mode's run is about what the bare algorithm lets through.
 */
function heapWithHole(checked: boolean) {
  const heap = GlobalAllocator.create({ backend: basicBackend, options: { tcache: false }, heapBytes: 4 * MiB, checked });
  const a = heap.malloc(100);
  const b = heap.malloc(100);
  const c = heap.malloc(100);
  heap.free(b);
  return { heap, a, b, c };
}

describe('basic in checked mode', () => {
  it('reports a damaged footer of a free neighbour at the free that touches it', () => {
    for (const checked of [false, true]) {
      const { heap, a, b } = heapWithHole(checked);
      const hole = b - 8;
      const size = heap.memory.u32[hole >>> 2]! & ~7;
      heap.memory.u32[(hole + size - 4) >>> 2] = 16; // the hole's footer lies about its size
      if (checked) {
        const error = expectAllocError(() => heap.free(a), 'HeapCorrupted');
        expect(error.message).toContain(hex(hole));
      } else {
        // Without checks only check() sees the damage; the free goes through (and its merge
        // happens to rewrite the footer).
        expectAllocError(() => heap.check(), 'HeapCorrupted');
        heap.free(a);
      }
    }
  });

  it('reports a next block whose PREV_USED bit disagrees, at the realloc that touches it', () => {
    const { heap, a } = heapWithHole(true);
    const next = a - 8 + (heap.memory.u32[(a - 8) >>> 2]! & ~7);
    heap.memory.u32[next >>> 2] = heap.memory.u32[next >>> 2]! & ~2;
    expectAllocError(() => heap.realloc(a, 50), 'HeapCorrupted');
  });

  it('is chosen by HEAPLAB_CHECKED=1 when the config does not say', () => {
    const saved = process.env['HEAPLAB_CHECKED'];
    process.env['HEAPLAB_CHECKED'] = '1';
    try {
      const { heap, a, b } = heapWithHole(undefined as unknown as boolean);
      heap.memory.u32[(b - 8 + (heap.memory.u32[(b - 8) >>> 2]! & ~7) - 4) >>> 2] = 16;
      expectAllocError(() => heap.free(a), 'HeapCorrupted');
    } finally {
      if (saved === undefined) delete process.env['HEAPLAB_CHECKED'];
      else process.env['HEAPLAB_CHECKED'] = saved;
    }
  });
});
