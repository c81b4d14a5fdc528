/**
 * The backend `heaplab new-backend` writes, tested here in the repository: the template's
 * allocator (an implicit free list) imported as it stands (its name line says 'template'),
 * through the conformance, multi-worker and crash-recovery suites every backend runs, plus
 * checks that its check() catches each broken invariant it documents and that its recover()
 * mends what it can rebuild from the headers and refuses the rest.
 */

import { AllocError, GlobalAllocator, MiB } from '@heaplab/core';
import { describeConformance, describeCrashRecovery, describeMultiWorker, errorOf, expectWalkAgrees } from '@heaplab/test-kit';
import { afterEach, describe, expect, it } from 'vitest';

import { backend } from '../templates/backend/src/__NAME__.js';

describeConformance({ label: 'template (implicit list)', backend });
describeMultiWorker({ label: 'template (implicit list)', backend });
describeCrashRecovery({ label: 'template (implicit list)', backend });

describe('template backend: check() finds each broken invariant', () => {
  const open: GlobalAllocator[] = [];
  afterEach(() => {
    for (const heap of open.splice(0)) heap.detach();
  });
  /**
   * A heap with three live blocks side by side; the middle one's header is at `address - 4`.
   * Without core's thread cache: with it, the three come from a refill's batch of eight, not
   * in address order, and frees stay in the cache instead of reaching the list.
   */
  const threeBlocks = () => {
    const heap = GlobalAllocator.create({ backend, heapBytes: 4 * MiB, options: { tcache: false } });
    open.push(heap);
    const addresses = [heap.malloc(40), heap.malloc(40), heap.malloc(40)];
    heap.check();
    return { heap, u32: heap.memory.u32, middle: addresses[1]! };
  };
  const corruption = (heap: GlobalAllocator): string => {
    const error = errorOf(() => heap.check());
    expect(error.kind).toBe('HeapCorrupted');
    return error.message;
  };

  it('a header that differs from its footer', () => {
    const { heap, u32, middle } = threeBlocks();
    u32[(middle - 4) >>> 2] = u32[(middle - 4) >>> 2]! + 8;
    expect(corruption(heap)).toMatch(/footer|does not fit/);
  });

  it('a header of size 0 ends the walk with HeapCorrupted, not a loop', () => {
    const { heap, u32, middle } = threeBlocks();
    u32[(middle - 4) >>> 2] = 1;
    expect(corruption(heap)).toMatch(/size 0/);
    // free walks the same pool: it fails the same way instead of looping.
    expect(errorOf(() => heap.free(middle + 4096)).kind).toBe('HeapCorrupted');
  });

  it('two free blocks side by side', () => {
    const { heap, u32, middle } = threeBlocks();
    const first = middle - 48 - 4;
    // Clear the ALLOC bit of the first two blocks behind the allocator's back.
    for (const block of [first, middle - 4]) {
      const size = u32[block >>> 2]! & ~7;
      u32[block >>> 2] = size;
      u32[(block + size - 4) >>> 2] = size;
    }
    expect(corruption(heap)).toMatch(/side by side/);
  });

  it('an overwritten prologue or epilogue', () => {
    const { heap, u32, middle } = threeBlocks();
    u32[(middle - 48 - 8) >>> 2] = 0;
    expect(corruption(heap)).toMatch(/prologue/);
  });

  it('counters that disagree with the blocks', () => {
    const { heap, u32, middle } = threeBlocks();
    // Mark the middle block free (and its footer) without telling the counters.
    const block = middle - 4;
    const size = u32[block >>> 2]! & ~7;
    u32[block >>> 2] = size;
    u32[(block + size - 4) >>> 2] = size;
    expect(corruption(heap)).toMatch(/counters/);
  });

  it('refuses interior pointers and double frees, and coalesces back to one free block', () => {
    const { heap, middle } = threeBlocks();
    expect(errorOf(() => heap.free(middle + 8)).kind).toBe('NotAllocated');
    heap.free(middle);
    expect(errorOf(() => heap.free(middle)).kind).toBe('NotAllocated');
    expect(heap.stats().freeBlocks).toBe(2);
    heap.free(middle - 48);
    heap.free(middle + 48);
    const report = heap.check();
    expect(report).toMatchObject({ liveBlocks: 0, freeBlocks: 1, blocks: 1 });
  });

  it('walks each block as header, payload and footer, between the prologue and the epilogue', () => {
    const { heap, middle } = threeBlocks();
    heap.free(middle);
    const regions = expectWalkAgrees(heap);
    const at = (address: number) => regions.find((region) => region.address === address);
    // The three 48-byte blocks of malloc(40), the middle one freed, then the rest of the pool.
    expect(at(middle - 48 - 4)).toMatchObject({ kind: 'header', bytes: 4, detail: 'header' });
    expect(at(middle - 48)).toMatchObject({ kind: 'live', bytes: 40, detail: '48 B block' });
    expect(at(middle - 4 - 4)).toMatchObject({ kind: 'header', bytes: 4, detail: 'footer' });
    expect(at(middle)).toMatchObject({ kind: 'free', bytes: 40 });
    expect(at(middle + 48)).toMatchObject({ kind: 'live', bytes: 40 });
    expect(regions[0]).toMatchObject({ address: heap.arenaStart, kind: 'header', detail: 'padding and prologue' });
    expect(regions.at(-1)).toMatchObject({ kind: 'metadata', detail: 'epilogue' });
  });

  it('a walk over a header of size 0 throws HeapCorrupted, showing nothing past the block before it', () => {
    const { heap, u32, middle } = threeBlocks();
    u32[(middle - 4) >>> 2] = 1;
    const shown: number[] = [];
    const error = errorOf(() => heap.backendInstance.walk!((region) => shown.push(region.address)));
    expect(error.kind).toBe('HeapCorrupted');
    expect(Math.max(...shown)).toBeLessThan(middle - 4);
  });

  it('recover() rebuilds from the headers: merges free neighbours, rewrites footers, recounts the counters', () => {
    const { heap, u32, middle } = threeBlocks();
    const first = middle - 48 - 4;
    // What no death of this allocator leaves, but a repair from the headers must still mend:
    // the first two blocks free side by side and their footers stale, the counters not told.
    for (const block of [first, middle - 4]) u32[block >>> 2] = u32[block >>> 2]! & ~7;
    expect(corruption(heap)).toMatch(/side by side|footer/);
    const repair = heap.backendInstance.recover!({ lock: 'heap', deadThreadId: 2 });
    expect(repair).toMatchObject({ lostBytes: 0, lostBlocks: 0 });
    expect(repair.notes.join('\n')).toMatch(/merged 1 free block.*\n.*rewrote 1 footer.*\n.*recounted the counters/s);
    expect(heap.check()).toMatchObject({ liveBlocks: 1, freeBlocks: 2 });
    expect(errorOf(() => heap.free(middle)).kind).toBe('NotAllocated');
    heap.free(middle + 48);
    expect(heap.check()).toMatchObject({ liveBlocks: 0, freeBlocks: 1 });
  });

  it('recover() refuses broken headers and pool ends with HeapCorrupted, without looping', () => {
    const recoverError = (heap: GlobalAllocator) => errorOf(() => heap.backendInstance.recover!({ lock: 'heap', deadThreadId: 2 }));
    let { heap, u32, middle } = threeBlocks();
    u32[(middle - 4) >>> 2] = 1;
    expect(recoverError(heap)).toMatchObject({ kind: 'HeapCorrupted', message: expect.stringMatching(/size 0/) });
    ({ heap, u32, middle } = threeBlocks());
    u32[(middle - 4) >>> 2] = 48 | 4;
    expect(recoverError(heap)).toMatchObject({ kind: 'HeapCorrupted', message: expect.stringMatching(/flag bits/) });
    ({ heap, u32, middle } = threeBlocks());
    u32[(middle - 48 - 8) >>> 2] = 0;
    expect(recoverError(heap)).toMatchObject({ kind: 'HeapCorrupted', message: expect.stringMatching(/prologue or epilogue/) });
  });

  it('takes more memory with addMemory and allocates from it', () => {
    const heap = GlobalAllocator.create({ backend, heapBytes: 8 * MiB, initBytes: 4 * MiB });
    open.push(heap);
    const big = heap.malloc(3 * MiB);
    expect(heap.malloc(3 * MiB)).toBe(0);
    heap.addMemory(heap.arenaStart + 4 * MiB, 4 * MiB);
    const second = heap.malloc(3 * MiB);
    expect(second).toBeGreaterThanOrEqual(heap.arenaStart + 4 * MiB);
    expect(heap.check().pools).toBe(2);
    heap.free(big);
    heap.free(second);
    expect(heap.stats().usedBytes).toBe(0);
    expect(() => heap.addMemory(heap.arenaStart + 4 * MiB, 64)).toThrow(AllocError);
  });
});
