/**
 * What free's fast path refuses with its one combined test (the block grid below the
 * capacity, `offGrid` in free.ts) and what the facade refuses first, for a backend that
 * validates addresses itself: every 8-aligned offset of a page in every size class, the
 * page's header room before its first block, the blocks past the extended ones, a free
 * page slot, and addresses outside the arena. Each refusal leaves the heap as it was.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';
import { expectAllocError } from '@heaplab/test-kit';

import { mimallocBackend } from '../src/index.js';
import { PAGE_DESCRIPTOR_BYTES, PG_CAPACITY, PG_RESERVED, PG_START, SEGMENT_MASK } from '../src/layout.js';
import { BIN_MAX, blockSizeOfBin, SMALL_OBJ_SIZE_MAX } from '../src/size-classes.js';
import { pageOf } from './helpers.js';

const word = (heap: GlobalAllocator, page: number, field: number): number => heap.memory.u32[(page + field) >>> 2]!;

describe('free on a mimalloc heap', () => {
  it('refuses every offset of a small block that is not its start, in every small size class', () => {
    const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 16 * MiB });
    for (let bin = 1; bin <= BIN_MAX && blockSizeOfBin(bin) <= SMALL_OBJ_SIZE_MAX; bin++) {
      const size = blockSizeOfBin(bin);
      const first = heap.malloc(size);
      const second = heap.malloc(size);
      expect(second - first, `bin ${bin}`).toBe(size);
      const used = heap.usedBytes();
      for (let offset = 8; offset < size; offset += 8) {
        expectAllocError(() => heap.free(first + offset), 'NotAllocated');
      }
      for (const offset of [1, 4, 7]) expectAllocError(() => heap.free(first + offset), 'InvalidParam');
      expect(heap.usedBytes(), `bin ${bin}`).toBe(used);
      heap.free(second);
      heap.free(first);
      expectAllocError(() => heap.free(first), 'NotAllocated');
    }
    heap.check();
    expect(heap.usedBytes()).toBe(0);
    heap.detach();
  });

  it('refuses the header room before page 0, the blocks past the extended ones and a free page slot', () => {
    const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 16 * MiB });
    const block = heap.malloc(48);
    const page = pageOf(heap, block);
    const segment = block - (block & SEGMENT_MASK);
    const start = word(heap, page, PG_START);
    const capacity = word(heap, page, PG_CAPACITY);
    expect(capacity).toBeLessThan(word(heap, page, PG_RESERVED));
    const used = heap.usedBytes();
    // Inside the segment header and page descriptors: in the arena, 8-aligned, no block.
    for (const address of [segment, segment + 8, start - 8, start - 48]) expectAllocError(() => heap.free(address), 'NotAllocated');
    // The first block past the extended ones, and the last one the page could hold.
    expectAllocError(() => heap.free(start + capacity * 48), 'NotAllocated');
    expectAllocError(() => heap.free(start + (word(heap, page, PG_RESERVED) - 1) * 48), 'NotAllocated');
    // Page 5 of the segment is a free slot (capacity 0).
    const slot = page + 5 * PAGE_DESCRIPTOR_BYTES;
    expect(word(heap, slot, PG_CAPACITY)).toBe(0);
    expectAllocError(() => heap.free(segment + 5 * 65536), 'NotAllocated');
    // Outside the arena: refused by the facade as for every backend, after the backend did.
    for (const address of [8, heap.arenaStart - 8, heap.arenaEnd, 2 ** 32 - 8]) expectAllocError(() => heap.free(address), 'InvalidParam');
    expect(heap.usedBytes()).toBe(used);
    heap.check();
    heap.free(block);
    expect(heap.usedBytes()).toBe(0);
    heap.detach();
  });
});
