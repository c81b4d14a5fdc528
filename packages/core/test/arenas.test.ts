/**
 * A locked backend run as several arenas (facade/arenas.ts, docs/arenas.md): where each
 * thread's blocks come from, where frees go, what the whole heap reports, what is refused,
 * and a thread that dies holding an arena's lock.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, LockIndex, MiB, type ReapReport } from '../src/index.js';
import { arenaStagger, SB_ARENA_COUNT, SB_BACKEND_STATE_BYTES } from '../src/memory/heap-layout.js';
import { SharedHeap } from '../src/memory/shared-heap.js';
import { ownerSlot } from '../src/tcache/thread-cache.js';
import { expectAllocError, expectWalkAgrees, spawnKitWorker } from '@heaplab/test-kit';

/** A heap of basic with `arenas` arenas of `heapBytes` in all, and a second handle on it (thread 2). */
function twoHandles(arenas: number, heapBytes = 16 * MiB, tcache = true): { first: GlobalAllocator; second: GlobalAllocator } {
  const first = GlobalAllocator.create({ backend: 'basic', options: { arenas, tcache }, heapBytes });
  return { first, second: GlobalAllocator.attachSync(first.buffer) };
}

/** The arena (0-based) whose slice holds `address`: each arena's one pool is its slice. */
function arenaOf(heap: GlobalAllocator, address: number): number {
  return heap.pools().findIndex((pool) => address >= pool.start && address < pool.start + pool.size);
}

describe('arenas', () => {
  for (const tcache of [true, false]) {
    it(`gives each thread blocks of its own arena, small and large (tcache ${tcache})`, () => {
      const { first, second } = twoHandles(2, 16 * MiB, tcache);
      expect([first.threadId, second.threadId]).toEqual([1, 2]);
      const mine = [first.malloc(24), first.malloc(700), first.malloc(5000), first.malloc(MiB)];
      const theirs = [second.malloc(24), second.malloc(700), second.malloc(5000), second.malloc(MiB)];
      expect(mine.map((address) => arenaOf(first, address))).toEqual([0, 0, 0, 0]);
      expect(theirs.map((address) => arenaOf(first, address))).toEqual([1, 1, 1, 1]);
      // Frees cross: each goes to the arena holding the block, whoever frees it.
      for (const address of mine) second.free(address);
      for (const address of theirs) first.free(address);
      first.check();
      second.check();
      expect(first.usedBytes()).toBe(second.usedBytes());
      second.detach();
      expect(first.usedBytes()).toBe(0);
      first.check();
      first.detach();
    });
  }

  it('lists one pool per arena, adds up every figure and walks the arenas in address order', () => {
    const { first, second } = twoHandles(3, 28 * MiB);
    // Slices of 8 MiB, each after the first starting a stagger (168 KiB) further on.
    const stagger = arenaStagger(3);
    expect(stagger).toBe(168 * 1024);
    expect(first.pools()).toEqual([
      { start: first.arenaStart, size: 8 * MiB + stagger },
      { start: first.arenaStart + 8 * MiB + stagger, size: 8 * MiB + stagger },
      { start: first.arenaStart + 16 * MiB + 2 * stagger, size: 12 * MiB - 2 * stagger },
    ]);
    const a = first.malloc(3000);
    const b = second.malloc(5000);
    const stats = first.stats();
    expect(stats.liveBlocks).toBe(2);
    expect(stats.totalBytes).toBe(first.totalBytes());
    expect(stats.totalBytes).toBeGreaterThan(27 * MiB);
    expect(stats.largestFreeBlock).toBeGreaterThan(11 * MiB);
    expect(first.check()).toMatchObject({ liveBlocks: 2, pools: 3 });
    expectWalkAgrees(first);
    const live = first.walk().filter((region) => region.kind === 'live');
    expect(live.map((region) => region.address)).toEqual([a, b]);
    expect(first.classStats().map((table) => table.name)).toEqual([
      'free list (arena 0)',
      'free sizes (arena 0)',
      'free list (arena 1)',
      'free sizes (arena 1)',
      'free list (arena 2)',
      'free sizes (arena 2)',
    ]);
    first.free(a);
    first.free(b);
    second.detach();
    first.detach();
  });

  for (const tcache of [true, false]) {
    it(`takes from another arena when a thread's own is full, and frees there (tcache ${tcache})`, () => {
      const { first, second } = twoHandles(2, 8 * MiB, tcache);
      const held: number[] = [];
      /** Allocates `size` until a block comes from arena 1 (arena 0 has no room for it); returns that block. */
      const fillArenaZero = (size: number): number => {
        for (;;) {
          const address = first.malloc(size);
          expect(address, `a ${size}-byte block while arena 1 has room`).not.toBe(0);
          held.push(address);
          if (arenaOf(first, address) === 1) return address;
        }
      };
      fillArenaZero(64 * 1024);
      fillArenaZero(1024);
      fillArenaZero(8);
      expect(held.filter((address) => arenaOf(first, address) === 1)).toHaveLength(3);
      first.check();
      // The other thread frees all of it: each block goes back to the arena it came from.
      for (const address of held) second.free(address);
      second.detach();
      first.check();
      expect(first.usedBytes()).toBe(0);
      first.detach();
    });
  }

  it("gives each arena's first blocks owner-table entries of their own, so two threads' caches keep theirs", () => {
    // The table's entries repeat every 512 KiB of addresses; slices 4 MiB apart would put
    // every arena's first blocks on the same entries.
    for (const arenas of [2, 3]) {
      const heap = GlobalAllocator.create({ backend: 'basic', options: { arenas }, heapBytes: 4 * arenas * MiB });
      const stagger = arenaStagger(arenas);
      const slots = new Set<number>();
      for (const pool of heap.pools()) for (let offset = 0; offset < stagger; offset += 8) slots.add(ownerSlot(pool.start + offset));
      // Every address of every arena's first stagger has an entry no other has.
      expect(slots.size).toBe((arenas * stagger) / 8);
      heap.detach();
    }
  });

  it('refuses a block larger than one arena, though the heap has room for it', () => {
    const heap = GlobalAllocator.create({ backend: 'basic', options: { arenas: 2 }, heapBytes: 8 * MiB });
    expect(heap.malloc(5 * MiB)).toBe(0);
    expect(heap.malloc(3 * MiB)).not.toBe(0);
    heap.detach();
  });

  it('refuses what a heap of arenas cannot do, with a typed error, and leaves the heap intact', () => {
    expectAllocError(() => GlobalAllocator.create({ backend: 'basic', options: { arenas: 4 } }), 'InvalidParam');
    expectAllocError(() => GlobalAllocator.create({ backend: 'basic', options: { arenas: 0 } }), 'InvalidParam');
    expectAllocError(() => GlobalAllocator.create({ backend: 'basic', options: { arenas: 1.5 } }), 'InvalidParam');
    const small = expectAllocError(() => GlobalAllocator.create({ backend: 'basic', options: { arenas: 3 }, heapBytes: 8 * MiB }), 'InvalidParam');
    expect(small.message).toMatch(/3 arenas needs at least 12 MiB/);
    const init = expectAllocError(
      () => GlobalAllocator.create({ backend: 'basic', options: { arenas: 2 }, heapBytes: 16 * MiB, initBytes: 8 * MiB }),
      'InvalidParam',
    );
    expect(init.message).toMatch(/initBytes must be heapBytes/);
    const heap = GlobalAllocator.create({ backend: 'basic', options: { arenas: 2 }, heapBytes: 16 * MiB });
    const kept = heap.malloc(100);
    expect(expectAllocError(() => heap.addMemory(heap.arenaStart + 12 * MiB, MiB), 'InvalidParam').message).toMatch(/no range to add/);
    // An address in the second arena that is no block is refused as in the first.
    expectAllocError(() => heap.free(heap.arenaStart + 8 * MiB + 64), 'NotAllocated');
    expectAllocError(() => heap.free(heap.arenaEnd + 8), 'InvalidParam');
    heap.free(kept);
    heap.check();
    heap.detach();
  });

  it('passes over an arena whose lock it cannot get, and says so when no other arena had room', () => {
    const heap = GlobalAllocator.create({ backend: 'basic', options: { arenas: 3, tcache: false }, heapBytes: 12 * MiB, lockTimeoutMs: 50 });
    const second = GlobalAllocator.attachSync(heap.buffer);
    // Thread 2 holds arena 1's lock (as a thread stuck, or dead and not yet reaped, would).
    const holder = SharedHeap.open(heap.buffer).mutex(LockIndex.arena1, second.threadId);
    holder.lock();
    const blocks: number[] = [];
    let address = heap.malloc(MiB);
    while (address !== 0 && arenaOf(heap, address) === 0) {
      blocks.push(address);
      address = heap.malloc(MiB);
    }
    // Arena 0 full: arena 1 cannot be asked, so arena 2 serves.
    expect(arenaOf(heap, address)).toBe(2);
    blocks.push(address);
    let error: unknown = null;
    try {
      for (;;) blocks.push(heap.malloc(MiB) || Number.NaN);
    } catch (thrown) {
      error = thrown;
    }
    // Arena 2 full too: not "no memory", since arena 1 was never asked.
    expect(blocks.filter(Number.isNaN)).toEqual([]);
    expect((error as { kind?: string }).kind).toBe('LockTimeout');
    expect((error as Error).message).toMatch(/arena1/);
    holder.unlock();
    const last = heap.malloc(MiB);
    expect(arenaOf(heap, last)).toBe(1);
    for (const block of [...blocks, last]) heap.free(block);
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    second.detach();
    heap.detach();
  });

  it('refuses to attach to a heap whose arena count or state size was changed', () => {
    for (const [field, change] of [
      ['arenaCount', (u32: Uint32Array) => void (u32[SB_ARENA_COUNT >> 2] = 1)],
      ['backendStateBytes', (u32: Uint32Array) => void (u32[SB_BACKEND_STATE_BYTES >> 2]! += 64)],
    ] as const) {
      const heap = GlobalAllocator.create({ backend: 'basic', options: { arenas: 2 }, heapBytes: 16 * MiB });
      change(heap.memory.u32);
      const error = expectAllocError(() => GlobalAllocator.attachSync(heap.buffer), 'InvalidHeap');
      expect(error.message).toContain(`field ${field}`);
    }
  });

  it('repairs the arena whose lock a dead thread held, and gives its cache back to that arena', async () => {
    const heap = GlobalAllocator.create({ backend: 'basic', options: { arenas: 2 }, heapBytes: 16 * MiB, lockTimeoutMs: 60_000 });
    const kept = heap.malloc(100);
    const worker = spawnKitWorker();
    const reaped = new Promise<ReapReport>((resolve) => heap.watchWorker(worker, resolve));
    // The worker is thread 2, at home in arena 1: it fills its cache there, then dies holding arena 1's lock.
    worker.postMessage({ id: 1, task: { kind: 'lock-step-death', buffer: heap.buffer, lockIndex: LockIndex.arena1, step: 'acquired', cachedBlocks: 20 } });
    const report = await reaped;
    expect(report.failed).toEqual([]);
    expect(report.recovered).toEqual(['arena1']);
    expect(heap.stats().threadCache).toMatchObject({ blocks: 0, bytes: 0 });
    heap.check();
    // Both arenas work: a second handle (thread 2 again) allocates in arena 1.
    const second = GlobalAllocator.attachSync(heap.buffer);
    const address = second.malloc(64);
    expect(arenaOf(heap, address)).toBe(1);
    heap.free(address);
    heap.free(kept);
    second.detach();
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });
});
