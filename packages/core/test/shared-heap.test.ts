import { describe, expect, it } from 'vitest';

import { AllocError, CONTROL_BYTES, GlobalAllocator, HEAP_ALIGN, MAX_HEAP_BYTES, MiB, SharedHeap, ThreadRegistry } from '../src/index.js';
import { expectAllocError } from '@heaplab/test-kit';

describe('the shared heap', () => {
  it('places a 4 MiB-aligned arena after the control region; default 512 MiB', () => {
    const heap = GlobalAllocator.create();
    expect(heap.arenaStart).toBe(CONTROL_BYTES);
    expect(heap.arenaStart % HEAP_ALIGN).toBe(0);
    expect(heap.arenaEnd - heap.arenaStart).toBe(512 * MiB);
    expect(heap.buffer.byteLength).toBe(CONTROL_BYTES + 512 * MiB);
    expect(heap.stats().heapBytes).toBe(512 * MiB);
    heap.detach();
  });

  it('refuses heap sizes that are not positive multiples of 4 MiB or too large', () => {
    for (const heapBytes of [0, -4 * MiB, 1, 3 * MiB, 6 * MiB, 4.5 * MiB, Number.NaN, MAX_HEAP_BYTES + HEAP_ALIGN]) {
      const error = expectAllocError(() => GlobalAllocator.create({ heapBytes }), 'InvalidParam');
      expect(error.message).toMatch(/heap size/);
    }
  });

  it('accepts a heap of at least 2 GiB (committed lazily)', () => {
    const heap = GlobalAllocator.create({ heapBytes: 2048 * MiB });
    const address = heap.malloc(1024 * MiB);
    expect(address).not.toBe(0);
    expect(address + 1024 * MiB).toBeLessThanOrEqual(heap.arenaEnd);
    heap.free(address);
    const high = heap.malloc(1500 * MiB);
    expect(high).not.toBe(0);
    heap.memory.u8[high + 1500 * MiB - 1] = 7;
    heap.free(high);
    heap.check();
    heap.detach();
  });

  it('refuses buffers that are not heaplab heaps, with a reason', () => {
    expect(() => SharedHeap.open(new ArrayBuffer(16))).toThrow(/not shared/);
    expect(() => SharedHeap.open(new SharedArrayBuffer(16))).toThrow(/too small/);
    expect(() => SharedHeap.open(new SharedArrayBuffer(8 * MiB))).toThrow(/not a heaplab heap \(magic 0x0/);
    expect(() => SharedHeap.open('heap')).toThrow(AllocError);
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const copy = new SharedArrayBuffer(heap.buffer.byteLength + HEAP_ALIGN);
    new Uint8Array(copy).set(heap.memory.u8);
    expect(() => SharedHeap.open(copy)).toThrow(/inconsistent/);
    const damaged = new SharedArrayBuffer(heap.buffer.byteLength);
    new Uint8Array(damaged).set(heap.memory.u8);
    new Uint32Array(damaged)[1] = 99;
    expect(() => SharedHeap.open(damaged)).toThrow(/layout version 99/);
    heap.detach();
  });

  it('hands out thread ids from the registry and reuses released ones', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB, maxThreads: 3 });
    const second = GlobalAllocator.attachSync(heap.buffer);
    const third = GlobalAllocator.attachSync(heap.buffer);
    expect(new Set([heap.threadId, second.threadId, third.threadId]).size).toBe(3);
    expect(heap.attachedThreads()).toBe(3);
    const full = expectAllocError(() => GlobalAllocator.attachSync(heap.buffer), 'ThreadLimit');
    expect(full.message).toMatch(/all 3 thread slots/);
    const freed = second.threadId;
    second.detach();
    expect(heap.attachedThreads()).toBe(2);
    const again = GlobalAllocator.attachSync(heap.buffer);
    expect(again.threadId).toBe(freed);
    // A detached handle refuses every call instead of using a slot it no longer owns.
    expectAllocError(() => second.malloc(8), 'InvalidParam');
    // Blocks outlive the thread that made them.
    const block = third.malloc(64);
    third.detach();
    again.free(block);
    again.detach();
    heap.check();
    heap.detach();
  });

  it('releases the slots of a thread by its Node threadId', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const other = GlobalAllocator.attachSync(heap.buffer);
    const registry = new ThreadRegistry(heap.memory, 64);
    expect(registry.describe(other.threadId)).toMatch(/Node threadId \d+, active/);
    // Both handles live on this Node thread, so both slots go but the caller's own, whose
    // thread is plainly alive.
    const released = heap.releaseThreadsOf(registry.nodeThreadId(other.threadId));
    expect(released.threads).toEqual([other.threadId]);
    expect(heap.attachedThreads()).toBe(1);
    heap.free(heap.malloc(8));
    heap.detach();
    expect(heap.attachedThreads()).toBe(0);
  });

  it('keeps the pool table: addMemory adds arena ranges and refuses overlap', () => {
    const heap = GlobalAllocator.create({ heapBytes: 16 * MiB, initBytes: 4 * MiB });
    expect(heap.pools()).toEqual([{ start: heap.arenaStart, size: 4 * MiB }]);
    const total = heap.totalBytes();
    expectAllocError(() => heap.addMemory(heap.arenaStart + 2 * MiB, 4 * MiB), 'MemoryOverlap');
    expectAllocError(() => heap.addMemory(heap.arenaEnd - MiB, 2 * MiB), 'InvalidParam');
    expectAllocError(() => heap.addMemory(heap.arenaStart - 8 * MiB, MiB), 'InvalidParam');
    expectAllocError(() => heap.addMemory(heap.arenaStart + 8 * MiB, 0), 'InvalidParam');
    heap.addMemory(heap.arenaStart + 8 * MiB, 8 * MiB);
    expect(heap.pools()).toHaveLength(2);
    expect(heap.totalBytes()).toBeGreaterThan(total + 7 * MiB);
    // A block larger than the first pool can only come from the second.
    const big = heap.malloc(6 * MiB);
    expect(big).toBeGreaterThanOrEqual(heap.arenaStart + 8 * MiB);
    heap.free(big);
    heap.check();
    // Another thread sees the same pools.
    const other = GlobalAllocator.attachSync(heap.buffer);
    expect(other.pools()).toEqual(heap.pools());
    other.detach();
    heap.detach();
  });
});
