/**
 * What `dealloc(address, layout)` accepts for a slab block (`blockLayout`): an object takes
 * the sizes its class serves for the alignment it was allocated with, and exactly that
 * alignment (its code in the slab header records it); a large run takes the sizes that need
 * exactly its pages, and the alignment its owner word records. A refused layout leaves the
 * heap as it was.
 */

import { GlobalAllocator, type Layout, MiB, PAGE_SIZE } from '@heaplab/core';
import { expectAllocError } from '@heaplab/test-kit';
import { afterEach, describe, expect, it } from 'vitest';

import { slabBackend } from '../src/index.js';
import { alignedClassOf, CLASS_ALIGN, CLASS_SIZE, classOf, MAX_CLASS_BYTES } from '../src/size-classes.js';
import { makeSlab } from './harness.js';

const open: GlobalAllocator[] = [];
afterEach(() => {
  for (const heap of open.splice(0)) heap.detach();
});

function slabHeap(): GlobalAllocator {
  const heap = GlobalAllocator.create({ backend: slabBackend, heapBytes: 8 * MiB });
  open.push(heap);
  return heap;
}

/** Expects `dealloc(address, layout)` to be refused, changing nothing. */
function refused(heap: GlobalAllocator, address: number, layout: Layout): void {
  const used = heap.usedBytes();
  const error = expectAllocError(() => heap.dealloc(address, layout), 'InvalidParam');
  expect(error.message).toContain('does not match');
  expect(heap.usedBytes()).toBe(used);
  expect(heap.usableSize(address)).toBeGreaterThan(0);
}

/** Expects each layout to be accepted, on a fresh block from `allocate` each time. */
function accepted(heap: GlobalAllocator, allocate: () => number, layouts: Layout[]): void {
  for (const layout of layouts) {
    const address = allocate();
    const used = heap.usedBytes();
    heap.dealloc(address, layout);
    expect(heap.usedBytes(), `dealloc with ${JSON.stringify(layout)}`).toBeLessThan(used);
  }
}

describe('slab: dealloc checks a layout against what the block could have been allocated with', () => {
  it('refuses size 0 and sizes of other classes for a malloc(1000) block, and accepts its own class', () => {
    const heap = slabHeap();
    expect(CLASS_SIZE[classOf(1000)]).toBe(1024);
    const block = heap.malloc(1000);
    for (const size of [0, 8, 896, 1025, 4096]) refused(heap, block, { size, align: 8 });
    accepted(
      heap,
      () => heap.malloc(1000),
      [897, 1000, 1024].map((size) => ({ size, align: 8 })),
    );
    // An alignment below 8 is raised to 8, as allocation raises it.
    accepted(heap, () => heap.malloc(1000), [{ size: 1000, align: 1 }]);
    heap.dealloc(block, { size: 1000, align: 8 });
    expectAllocError(() => heap.dealloc(block, { size: 1000, align: 8 }), 'NotAllocated');
    heap.check();
  });

  it('refuses an alignment the class does not give, even where the address has it', () => {
    const heap = slabHeap();
    // The first object of a fresh slab sits at the slab's page-aligned start.
    const block = heap.malloc(100);
    expect(block % PAGE_SIZE).toBe(0);
    expect(CLASS_ALIGN[classOf(100)]).toBe(16);
    for (const align of [32, 64, PAGE_SIZE]) refused(heap, block, { size: 100, align });
    // A malloc is an 8-aligned request: the alignment is recorded exactly, so 16 (which the
    // class does give) is refused too, as Rust's dealloc requires the allocation's layout.
    refused(heap, block, { size: 100, align: 16 });
    heap.dealloc(block, { size: 100, align: 8 });
    heap.check();
  });

  it('takes an aligned object back with the alignment it was allocated with and the sizes that alignment maps to its class', () => {
    const heap = slabHeap();
    const block = heap.alignedAlloc(64, 100);
    expect(heap.usableSize(block)).toBe(128);
    // 64 itself is served by the 64 class; 129 by a larger one; the other alignments were not asked for.
    for (const layout of [
      { size: 64, align: 64 },
      { size: 129, align: 64 },
      { size: 100, align: 8 },
      { size: 100, align: 32 },
      { size: 100, align: 128 },
    ]) {
      refused(heap, block, layout);
    }
    accepted(
      heap,
      () => heap.alignedAlloc(64, 100),
      [65, 100, 128].map((size) => ({ size, align: 64 })),
    );
    // A size of 0 aligned to a class's whole alignment is served by that class: accepted for
    // that block, while a malloc(1000) block of the same class refuses it (above).
    accepted(heap, () => heap.alignedAlloc(1024, 0), [{ size: 0, align: 1024 }]);
    heap.dealloc(block, { size: 100, align: 64 });
    expect(heap.usedBytes()).toBe(0);
    heap.check();
  });

  it('takes page runs back by their page count: deallocPages(allocPages(2), 1) is refused', () => {
    const heap = slabHeap();
    const two = heap.allocPages(2);
    expectAllocError(() => heap.deallocPages(two, 1), 'InvalidParam');
    expectAllocError(() => heap.deallocPages(two, 3), 'InvalidParam');
    heap.deallocPages(two, 2);
    for (const count of [3, 40]) {
      const run = heap.allocPages(count);
      expectAllocError(() => heap.deallocPages(run, count - 1), 'InvalidParam');
      expectAllocError(() => heap.deallocPages(run, count + 1), 'InvalidParam');
      // allocPages asks for page alignment, and the run's owner word records it.
      refused(heap, run, { size: count * PAGE_SIZE, align: 8 });
      refused(heap, run, { size: count * PAGE_SIZE, align: 2 * PAGE_SIZE });
      heap.dealloc(run, { size: count * PAGE_SIZE, align: PAGE_SIZE });
    }
    // A malloc served as a run: the sizes that need exactly its 3 pages, alignment 8.
    const run = heap.malloc(10_000);
    for (const size of [8192, 12_289]) refused(heap, run, { size, align: 8 });
    refused(heap, run, { size: 10_000, align: PAGE_SIZE });
    accepted(
      heap,
      () => heap.malloc(10_000),
      [8193, 10_000, 12_288].map((size) => ({ size, align: 8 })),
    );
    // An over-aligned small request is a one-page run: sizes 0 to a page, its own alignment.
    const aligned = heap.alignedAlloc(64 * 1024, 10);
    refused(heap, aligned, { size: PAGE_SIZE + 1, align: 64 * 1024 });
    refused(heap, aligned, { size: 10, align: PAGE_SIZE });
    heap.dealloc(aligned, { size: 0, align: 64 * 1024 });
    heap.dealloc(run, { size: 10_000, align: 8 });
    expect(heap.usedBytes()).toBe(0);
    heap.check();
  });

  it('accepts every layout an object was allocated with, and exactly the sizes that layout maps to its class', () => {
    const { slab } = makeSlab({}, 8 * MiB);
    for (let align = 8; align <= PAGE_SIZE; align *= 2) {
      for (let size = 0; size <= MAX_CLASS_BYTES; size += 1 + (size >> 5)) {
        const cls = align === 8 ? classOf(size) : alignedClassOf(size, align);
        if (cls < 0) continue;
        const address = slab.allocate(size, align);
        const layout = slab.blockLayout(address);
        const where = `a block of ${size} bytes aligned to ${align}`;
        expect(layout.minAlign, where).toBe(align);
        expect(layout.maxAlign, where).toBe(align);
        expect(layout.maxSize, where).toBe(CLASS_SIZE[cls]);
        expect(layout.minSize, where).toBeLessThanOrEqual(size);
        // The bounds are tight: one byte less (or more) maps to another class.
        const classFor = (s: number) => (align === 8 ? classOf(s) : alignedClassOf(s, align));
        if (layout.minSize > 0) expect(classFor(layout.minSize - 1), where).not.toBe(cls);
        expect(classFor(layout.minSize), where).toBe(cls);
        if (layout.maxSize < MAX_CLASS_BYTES) expect(classFor(layout.maxSize + 1), where).not.toBe(cls);
        slab.release(address);
      }
    }
    slab.check();
  });
});
