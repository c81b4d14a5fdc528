/**
 * `dealloc(address, layout)` takes only the layouts a block may have been allocated with
 * (issue #12; `blockLayout`): a size of the block's own size class (not 0, not another
 * class's size; a size of the same class cannot be told apart), an alignment up to what
 * every block of its class has; a huge block the sizes that give its span and the
 * alignments that give its offset.
 */

import { afterEach, describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';
import { expectAllocError } from '@heaplab/test-kit';

import { LARGE_OBJ_SIZE_MAX, mimallocBackend } from '../src/index.js';

const open: GlobalAllocator[] = [];
afterEach(() => {
  for (const heap of open.splice(0)) heap.detach();
});

function heapOf(): GlobalAllocator {
  const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 32 * MiB });
  open.push(heap);
  return heap;
}

function refused(heap: GlobalAllocator, address: number, size: number, align: number): void {
  expectAllocError(() => heap.dealloc(address, { size, align }), 'InvalidParam');
}

describe('blockLayout', () => {
  it("takes exactly the sizes of the block's class: not 0, not a smaller or larger class", () => {
    const heap = heapOf();
    // malloc(1000) is served by the 1024-byte class, which takes 897..1024.
    const a = heap.malloc(1000);
    refused(heap, a, 0, 8);
    refused(heap, a, 896, 8);
    refused(heap, a, 1025, 8);
    heap.dealloc(a, { size: 897, align: 8 });
    const b = heap.malloc(1000);
    // 1001 asks for the same class: the backend cannot know more, so it is taken.
    heap.dealloc(b, { size: 1001, align: 8 });
    // A 0-byte block is of the smallest class, which takes 0..8.
    const c = heap.malloc(0);
    refused(heap, c, 9, 8);
    heap.dealloc(c, { size: 0, align: 1 });
    heap.check();
    expect(heap.usedBytes()).toBe(0);
  });

  it('takes alignments up to what every block of the class has, even where an address has more', () => {
    const heap = heapOf();
    // 48-byte blocks are 16-aligned; keep allocating until one sits at a multiple of 64.
    const blocks: number[] = [];
    let lucky = 0;
    while (lucky === 0) {
      const block = heap.malloc(48);
      if (block % 64 === 0) lucky = block;
      else blocks.push(block);
    }
    refused(heap, lucky, 48, 32);
    refused(heap, lucky, 48, 64);
    heap.dealloc(lucky, { size: 48, align: 16 });
    // The 1024-byte class gives 1024.
    const k = heap.malloc(1000);
    refused(heap, k, 1000, 2048);
    heap.dealloc(k, { size: 1000, align: 1024 });
    for (const block of blocks) heap.free(block);
    heap.check();
  });

  it('takes back the layout of an aligned request whose size alone is of a smaller class', () => {
    const heap = heapOf();
    // A page of the 128-byte class that never served an aligned request: 100 is the 112-byte
    // class's size, refused.
    const plain = heap.malloc(120);
    refused(heap, plain, 100, 8);
    heap.free(plain);
    // alignedAlloc(64, 100) takes a 128-byte block: its own layout comes back.
    const aligned = heap.alloc({ size: 100, align: 64 });
    heap.dealloc(aligned, { size: 100, align: 64 });
    const whole = heap.alloc({ size: 8, align: 4096 });
    refused(heap, whole, 4097, 4096);
    heap.dealloc(whole, { size: 8, align: 4096 });
    heap.check();
  });

  it('takes the sizes that give a huge block its span, and the alignments that give its offset', () => {
    const heap = heapOf();
    const huge = heap.malloc(5 * MiB);
    const usable = heap.usableSize(huge);
    refused(heap, huge, 0, 8);
    refused(heap, huge, LARGE_OBJ_SIZE_MAX, 8);
    refused(heap, huge, usable + 1, 8);
    // The header rounded up to 8 puts the block at a multiple of 64, not of 128.
    refused(heap, huge, 5 * MiB, 128);
    heap.dealloc(huge, { size: 5 * MiB, align: 64 });
    const aligned = heap.alloc({ size: 5 * MiB, align: 4096 });
    refused(heap, aligned, 5 * MiB, 8);
    heap.dealloc(aligned, { size: 5 * MiB, align: 4096 });
    heap.check();
    expect(heap.usedBytes()).toBe(0);
  });
});
