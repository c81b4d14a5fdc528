/**
 * The smallest heap mimalloc works in: a thread's small and medium pages live in 4 MiB
 * segments of their own, so each allocating thread needs 8 MiB (`heapBytesPerThread`). A
 * smaller heap is refused at creation with that said, not found full in the middle of a run.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';
import { expectAllocError } from '@heaplab/test-kit';

import { mimallocBackend } from '../src/index.js';

describe('the smallest mimalloc heap', () => {
  it('is 8 MiB per thread, as the descriptor says', () => {
    expect(mimallocBackend.heapBytesPerThread).toBe(8 * MiB);
  });

  it('refuses a 4 MiB heap, saying how much a thread needs', () => {
    const error = expectAllocError(() => GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 4 * MiB }), 'InvalidParam');
    expect(error.message).toBe("backend 'mimalloc' needs at least 8 MiB of arena for each thread that allocates; heapBytes is 4 MiB");
  });

  it('serves small and medium blocks in 8 MiB', () => {
    const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 8 * MiB });
    const blocks = [16, 31_126, 100, 60_000].map((size) => heap.malloc(size));
    expect(blocks).not.toContain(0);
    for (const address of blocks) heap.free(address);
    heap.check();
    heap.detach();
  });
});
