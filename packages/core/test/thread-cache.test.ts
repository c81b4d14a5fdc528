/**
 * The thread cache in front of a locked backend (tcache/thread-cache.ts), on core's basic
 * backend: what it serves without the lock, what it refuses, its bounds, its figures, and a
 * fuzz of random operations against a model with `check()` after each sequence.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '../src/index.js';
import { OWNER_TABLE, SB_HEAP_COOKIE, TC_BYTE_LIMIT, TC_BYTES, TC_COUNTS, TC_FLUSHES, TC_MAX_REQUEST, TC_REFILLS } from '../src/memory/heap-layout.js';
import { binLimitOf, cacheClassOf, cacheMark, cacheRecordOffset, refillBatchOf } from '../src/tcache/thread-cache.js';
import { expectAllocError, expectWalkAgrees, memsetMarkerAddresses, signBlock, spellableMarkers, verifyBlock } from '@heaplab/test-kit';

/** Expects `run` to throw an `AllocError` of `kind` whose message matches `pattern`. */
function expectRefused(run: () => unknown, kind: string, pattern: RegExp): void {
  expectAllocError(run, kind as never);
  try {
    run();
  } catch (error) {
    expect((error as Error).message).toMatch(pattern);
  }
}

function cachedHeap(options: Record<string, unknown> = {}): GlobalAllocator {
  return GlobalAllocator.create({ backend: 'basic', options, heapBytes: 8 * MiB });
}

describe('the thread cache', () => {
  it('is on by default for a locked backend, and off with tcache=false, poisonFreed or checked mode', () => {
    const on = cachedHeap();
    expect(on.threadCacheOfThisThread).not.toBeNull();
    expect(on.stats().threadCache).toMatchObject({ blocks: 0 });
    for (const off of [cachedHeap({ tcache: false }), GlobalAllocator.create({ poisonFreed: true }), GlobalAllocator.create({ checked: true })]) {
      expect(off.threadCacheOfThisThread).toBeNull();
      expect(off.stats().threadCache).toBeNull();
      off.detach();
    }
    expectAllocError(() => cachedHeap({ tcache: 'sometimes' }), 'InvalidParam');
    on.detach();
  });

  it('serves a freed small block again without the heap lock, and refills a batch under one lock hold', () => {
    const heap = cachedHeap();
    const first = heap.malloc(24);
    const afterRefill = heap.stats().locks.find((lock) => lock.name === 'heap')!.acquired;
    // The refill took a batch of blocks: the next mallocs of the class, to the batch's end, take none.
    const more = Array.from({ length: refillBatchOf(cacheClassOf(24)) - 1 }, () => heap.malloc(20));
    heap.free(first);
    const again = heap.malloc(17);
    expect(again).toBe(first);
    const locks = heap.stats().locks.find((lock) => lock.name === 'heap')!.acquired;
    // stats() took the lock once to flush and once to read; nothing else did.
    expect(locks - afterRefill).toBeLessThanOrEqual(3);
    for (const address of [...more, again]) heap.free(address);
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it('bounds a bin: a free into a full bin flushes a batch first', () => {
    const heap = cachedHeap();
    const blocks = Array.from({ length: 3 * binLimitOf(cacheClassOf(64)) }, () => heap.malloc(64));
    for (const address of blocks) heap.free(address);
    const cache = heap.threadCacheOfThisThread!;
    expect(cache.isEmpty()).toBe(false);
    const figures = heap.stats().threadCache!;
    expect(figures.flushes).toBeGreaterThan(0);
    expect(heap.usedBytes()).toBe(0);
    heap.detach();
  });

  it('holds several refills: a class whose live count swings by three batches, once warm, neither flushes nor refills', () => {
    const heap = cachedHeap();
    const swing = 3 * refillBatchOf(cacheClassOf(64));
    // The record's own counters: stats() would give the cache back first.
    const record = cacheRecordOffset(heap.threadId);
    const counter = (field: number): number => heap.memory.u32[(record + field) >>> 2]!;
    const cycle = (): void => {
      const blocks = Array.from({ length: swing }, () => heap.malloc(64));
      for (const address of blocks) heap.free(address);
    };
    cycle();
    const refills = counter(TC_REFILLS);
    expect(refills).toBe(3);
    for (let round = 0; round < 10; round++) cycle();
    expect(counter(TC_REFILLS)).toBe(refills);
    expect(counter(TC_FLUSHES)).toBe(0);
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it('bounds the bytes a thread holds: past the limit, frees go to the backend', () => {
    const heap = cachedHeap();
    const perClass = binLimitOf(cacheClassOf(512));
    const blocks: number[] = [];
    for (let size = 512; size <= TC_MAX_REQUEST; size += 8) for (let i = 0; i < perClass; i++) blocks.push(heap.malloc(size));
    for (const address of blocks) heap.free(address);
    const record = heap.threadCacheOfThisThread!;
    expect(record.isEmpty()).toBe(false);
    // What the cache holds never passes its byte bound.
    const u32 = heap.memory.u32;
    const held = u32[(cacheRecordOffset(heap.threadId) + TC_BYTES) >>> 2]!;
    expect(held).toBeLessThanOrEqual(TC_BYTE_LIMIT);
    expect(heap.usedBytes()).toBe(0);
    heap.detach();
  });

  it('refuses a double free of a cached block, with its entry and without it', () => {
    const heap = cachedHeap();
    const address = heap.malloc(40);
    heap.free(address);
    expectRefused(() => heap.free(address), 'NotAllocated', /cache.*double free/);
    expectAllocError(() => heap.usableSize(address), 'NotAllocated');
    expectAllocError(() => heap.realloc(address, 80), 'NotAllocated');
    expectAllocError(() => heap.dealloc(address, { size: 40, align: 8 }), 'NotAllocated');
    // Another address overwrote its owner entry: the mark in the block still tells.
    heap.memory.u32[(OWNER_TABLE >>> 2) + ((address >>> 3) & 0xffff)] = 0;
    expectRefused(() => heap.free(address), 'NotAllocated', /cache mark/);
    heap.check();
    heap.detach();
  });

  it('writes no owner-table word in a warm malloc/free loop: only refills and flushes write entries', () => {
    const heap = cachedHeap();
    const sizes = [16, 40, 64, 200, 1000];
    const live = sizes.map((size) => heap.malloc(size));
    const table = (): Uint32Array => heap.memory.u32.slice(OWNER_TABLE >>> 2, (OWNER_TABLE >>> 2) + 0x10000);
    // Warm: every class has been refilled and holds room for the loop's swings.
    for (const address of live) heap.free(address);
    const before = table();
    const record = cacheRecordOffset(heap.threadId);
    const refills = heap.memory.u32[(record + TC_REFILLS) >>> 2]!;
    for (let round = 0; round < 200; round++) {
      const blocks = sizes.map((size) => heap.malloc(size));
      // Between the mallocs and the frees too: a pop writes nothing there.
      if (round % 50 === 0) expect(table()).toEqual(before);
      for (const address of blocks) heap.free(address);
    }
    expect(heap.memory.u32[(record + TC_REFILLS) >>> 2]).toBe(refills);
    expect(table()).toEqual(before);
    heap.check();
    heap.detach();
  });

  it('counts the owner entries a refill takes from blocks 512 KiB away, whose frees then go the locked way', () => {
    const heap = cachedHeap();
    const evictions = () => heap.stats().threadCache!.ownerEvictions;
    // A first run of 8-byte blocks (class 1) near the arena's start: 64 blocks, one refill.
    const batch = refillBatchOf(1);
    const first = Array.from({ length: batch }, () => heap.malloc(8));
    expect(evictions()).toBe(0);
    // A large block (not cached) that ends where the table's entries wrap around: basic fits
    // first, so it goes where a probe of the same kind went, and the next run right after it.
    const probe = heap.malloc(2048);
    heap.free(probe);
    const wrap = 0x10000 << 3; // entries cover 512 KiB of addresses, then repeat
    // (basic's block has an 8-byte header: the next block's payload starts 8 bytes past its end.)
    const big = heap.malloc(first[0]! + wrap - probe - 8);
    expect(big).toBe(probe);
    const second = Array.from({ length: batch }, () => heap.malloc(8));
    expect(second[0]! - first[0]!).toBe(wrap);
    // The second run lies exactly 512 KiB past the first: each of its entries was one of the
    // first run's, and each is counted once.
    expect(evictions()).toBe(batch);
    // The first run's blocks lost their entries: their frees are validated by the backend, and
    // succeed; a second free of one is still refused.
    const refills = heap.stats().threadCache!.refills;
    for (const address of first) heap.free(address);
    expectAllocError(() => heap.free(first[3]!), 'NotAllocated');
    for (const address of [...second, big]) heap.free(address);
    expect(heap.stats().threadCache!.refills).toBe(refills);
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it('never makes a cache mark that memset writes (one byte repeated), for any block address and cookie', () => {
    // The 8-aligned addresses whose bare `address ^ cookie` would be such a word, for cookies
    // drawn from a fixed sequence (heap cookies are odd), and neighbours 8 and 256 away.
    const repeated = spellableMarkers(cacheMark);
    expect(repeated).toEqual([]);
  });

  it("frees, from another thread, a cached-path block filled with one byte where the cookie's xor alone would be that word", () => {
    // Such an address (8-aligned, in the arena) is in about one heap in 16: heaps are made
    // until one has it, then 8-byte blocks are taken until the cache hands it out (when it is
    // a block start of the backend's grid; else another heap).
    for (let attempt = 1; ; attempt++) {
      expect(attempt).toBeLessThan(1000);
      const owner = cachedHeap();
      const other = GlobalAllocator.attachSync(owner.buffer);
      try {
        const targets = memsetMarkerAddresses(owner.memory.u32[SB_HEAP_COOKIE >>> 2]!, owner.arenaStart, owner.arenaEnd, 8);
        if (targets.size === 0) continue;
        const live: number[] = [];
        let found = 0;
        while (found === 0) {
          const block = owner.malloc(8);
          if (block === 0) break;
          if (targets.has(block)) found = block;
          else live.push(block);
        }
        if (found === 0) continue;
        owner.memory.u8.fill(targets.get(found)!, found, found + 8);
        other.free(found);
        expectAllocError(() => other.free(found), 'NotAllocated');
        for (const block of live) owner.free(block);
        owner.check();
        expect(owner.usedBytes()).toBe(0);
        return;
      } finally {
        other.detach();
        owner.detach();
      }
    }
  });

  it("frees this thread's live block whose data only matches the cache mark, and still refuses its second free", () => {
    const heap = cachedHeap();
    const address = heap.malloc(48);
    // The program's data happens to be what a cached block's second word holds.
    heap.memory.u32[(address + 4) >>> 2] = cacheMark(address, heap.memory.u32[SB_HEAP_COOKIE >>> 2]!);
    expect(() => heap.usableSize(address)).not.toThrow();
    heap.free(address);
    expectRefused(() => heap.free(address), 'NotAllocated', /double free/);
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it('refuses interior pointers and never-allocated addresses through the backend', () => {
    const heap = cachedHeap();
    const address = heap.malloc(100);
    expectAllocError(() => heap.free(address + 16), 'NotAllocated');
    expectAllocError(() => heap.free(heap.arenaEnd - 64), 'NotAllocated');
    heap.free(address);
    heap.check();
    heap.detach();
  });

  it('reports a cached block whose link was overwritten (a write after free) instead of handing out a bad address', () => {
    const heap = cachedHeap();
    const a = heap.malloc(32);
    const b = heap.malloc(32);
    heap.free(a);
    heap.free(b);
    // b is the bin's head; its link points at a. A write after free scribbles over it.
    heap.memory.u32[b >>> 2] = 0x7fff_fff8;
    expectRefused(() => heap.malloc(32), 'HeapCorrupted', /link/);
    expectAllocError(() => heap.check(), 'HeapCorrupted');
    // Detach still releases the slot; the damaged bin's blocks are left allocated, not freed.
    heap.detach();
    const next = GlobalAllocator.attachSync(heap.buffer);
    expect(next.threadId).toBe(heap.threadId);
    next.check();
    next.detach();
  });

  it('check() finds a bin whose count disagrees with its list, and a mark that was overwritten', () => {
    const heap = cachedHeap();
    const a = heap.malloc(16);
    heap.free(a);
    const mark = heap.memory.u32[(a + 4) >>> 2];
    expect(mark).toBe(cacheMark(a, heap.memory.u32[SB_HEAP_COOKIE >>> 2]!));
    heap.memory.u32[(a + 4) >>> 2] = 0;
    expectRefused(() => heap.check(), 'HeapCorrupted', /mark/);
    heap.memory.u32[(a + 4) >>> 2] = mark!;
    const countByte = cacheRecordOffset(heap.threadId) + TC_COUNTS + cacheClassOf(16) - 1;
    heap.memory.u8[countByte]!++;
    expectRefused(() => heap.check(), 'HeapCorrupted', /count/);
    heap.memory.u8[countByte]!--;
    heap.check();
    heap.detach();
  });

  it('keeps dealloc honest: any size of the block class, nothing outside it', () => {
    const heap = cachedHeap();
    const address = heap.malloc(21);
    heap.free(address);
    const reused = heap.malloc(19);
    expect(reused).toBe(address);
    expectAllocError(() => heap.dealloc(reused, { size: 64, align: 8 }), 'InvalidParam');
    expectAllocError(() => heap.dealloc(reused, { size: 8, align: 8 }), 'InvalidParam');
    heap.dealloc(reused, { size: 19, align: 8 });
    heap.check();
    heap.detach();
  });

  it('agrees with a model through random operations, and check() and the walk agree after each sequence', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('malloc' as const), size: fc.nat(1100) }),
            fc.record({ kind: fc.constant('aligned' as const), size: fc.nat(300), alignLog: fc.integer({ min: 3, max: 8 }) }),
            fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
            fc.record({ kind: fc.constant('realloc' as const), pick: fc.nat(), size: fc.nat(1500) }),
          ),
          { maxLength: 300 },
        ),
        (steps) => {
          const heap = cachedHeap();
          const live = new Map<number, { writer: number; sequence: number; size: number }>();
          let sequence = 0;
          for (const step of steps) {
            const picked = [...live.keys()];
            if (step.kind === 'malloc' || step.kind === 'aligned') {
              const address = step.kind === 'malloc' ? heap.malloc(step.size) : heap.alignedAlloc(2 ** step.alignLog, step.size);
              expect(address).not.toBe(0);
              expect(live.has(address), `address ${address} handed out twice`).toBe(false);
              const signature = { writer: 1, sequence: sequence++, size: step.size };
              signBlock(heap.memory.u8, address, signature);
              live.set(address, signature);
            } else if (picked.length > 0) {
              const address = picked[step.pick % picked.length]!;
              const signature = live.get(address)!;
              expect(verifyBlock(heap.memory.u8, address, signature)).toBeNull();
              live.delete(address);
              if (step.kind === 'free') {
                heap.free(address);
              } else {
                const kept = Math.min(signature.size, step.size);
                const before = heap.memory.u8.slice(address, address + kept);
                const moved = heap.realloc(address, step.size);
                expect(moved).not.toBe(0);
                expect([...heap.memory.u8.slice(moved, moved + kept)]).toEqual([...before]);
                const resigned = { writer: 1, sequence: sequence++, size: step.size };
                signBlock(heap.memory.u8, moved, resigned);
                live.set(moved, resigned);
              }
            }
          }
          for (const [address, signature] of live) expect(verifyBlock(heap.memory.u8, address, signature)).toBeNull();
          heap.check();
          expectWalkAgrees(heap);
          for (const address of live.keys()) heap.free(address);
          expect(heap.usedBytes()).toBe(0);
          heap.detach();
        },
      ),
      { numRuns: 60 },
    );
  });

  it('sends a block freed by another thread to the backend, never into that thread cache', () => {
    const heap = cachedHeap();
    const other = GlobalAllocator.attachSync(heap.buffer);
    const blocks = Array.from({ length: 64 }, (_, i) => heap.malloc(16 + (i % 8) * 8));
    const cachedByOwner = heap.malloc(48);
    heap.free(cachedByOwner);
    for (const address of blocks) other.free(address);
    expect(other.threadCacheOfThisThread!.isEmpty()).toBe(true);
    // Freed for real: a second free by the owner is the backend's double free.
    expectAllocError(() => heap.free(blocks[0]!), 'NotAllocated');
    // A block in the owner's cache is free: another thread's free of it is refused.
    const again = heap.malloc(48);
    expect(again).toBe(cachedByOwner);
    heap.free(again);
    expectRefused(() => other.free(again), 'NotAllocated', /thread \d+'s cache/);
    expect(heap.stats().threadCache!.remoteFrees).toBe(blocks.length);
    other.detach();
    heap.check();
    expect(heap.usedBytes()).toBe(0);
    heap.detach();
  });
});
