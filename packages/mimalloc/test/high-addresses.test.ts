import { AllocError, GlobalAllocator, MiB } from '@heaplab/core';
import { describe, expect, it } from 'vitest';

import { mimallocBackend } from '../src/index.js';

/** Blocks of every page kind, each signed with its own address in its first word. */
function allocateSigned(heap: GlobalAllocator, sizes: readonly number[]): number[] {
  return sizes.map((size) => {
    const block = heap.malloc(size);
    expect(block).not.toBe(0);
    heap.memory.u32[block >>> 2] = block;
    heap.memory.u32[(block + size - 4) >>> 2] = block;
    return block;
  });
}

describe('mimalloc above 2 GiB', () => {
  // The fast paths compute in int32, where these addresses are negative: the same bits,
  // with every word index taken by `>>>`. This run keeps them honest.
  it('allocates, frees locally and remotely, and refuses bad frees at addresses from 2^31 up', () => {
    const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 2048 * MiB + 64 * MiB });
    const other = GlobalAllocator.attachSync(heap.buffer, { backends: [mimallocBackend] });
    // A huge block takes the segments below 2 GiB (the arena starts at 4 MiB), so every
    // later segment lies above.
    const filler = heap.malloc(2040 * MiB);
    expect(filler).toBeLessThan(2 ** 31);
    const sizes = [
      ...Array.from({ length: 300 }, (_, i) => 8 + (i % 40) * 8),
      ...Array.from({ length: 40 }, () => 3000),
      ...Array.from({ length: 6 }, () => 100_000),
      1 * MiB,
    ];
    const blocks = allocateSigned(heap, sizes);
    for (const block of blocks) expect(block).toBeGreaterThanOrEqual(2 ** 31);
    heap.check();

    // Interior and double frees are refused, and the heap is unchanged.
    expect(() => heap.free(blocks[300]! + 8)).toThrow(AllocError);
    expect(() => heap.free(blocks[300]! + 8)).toThrow(/not on the block grid/);
    heap.free(blocks[1]!);
    expect(() => heap.free(blocks[1]!)).toThrow(/double free/);
    expect(heap.usableSize(blocks[2]!)).toBeGreaterThanOrEqual(sizes[2]!);

    // Half freed by the owner, the other half by another thread.
    blocks.forEach((block, index) => {
      if (index === 1) return;
      const size = sizes[index]!;
      expect(heap.memory.u32[block >>> 2]).toBe(block);
      expect(heap.memory.u32[(block + size - 4) >>> 2]).toBe(block);
      (index % 2 === 0 ? heap : other).free(block);
    });
    heap.check();
    // Freed blocks come back, still above 2 GiB.
    const again = allocateSigned(heap, sizes);
    for (const block of again) expect(block).toBeGreaterThanOrEqual(2 ** 31);
    for (const block of again) heap.free(block);
    heap.free(filler);
    expect(heap.stats().usedBytes).toBe(0);
    heap.check();
    other.detach();
    heap.detach();
  });
});
