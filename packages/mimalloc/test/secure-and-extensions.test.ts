import { afterEach, describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';
import { expectAllocError, memsetMarkerAddresses, spellableMarkers } from '@heaplab/test-kit';

import { collect, flushRemoteFrees, heapReport, mimallocBackend, mimallocOf, registerDeferredFree, statsJson, statsTable } from '../src/index.js';
import { freedMarker } from '../src/secure.js';
import { HP_DELAYED_FREE, USE_DELAYED_FREE } from '../src/layout.js';
import { delayedState, twoHandles } from './helpers.js';

const open: GlobalAllocator[] = [];
afterEach(() => {
  for (const heap of open.splice(0)) heap.detach();
});

function heapWith(secure: boolean): GlobalAllocator {
  // Not checked: these tests show what secure and the default mode find by themselves.
  const heap = GlobalAllocator.create({ backend: mimallocBackend, options: { secure }, heapBytes: 16 * MiB, checked: false });
  open.push(heap);
  return heap;
}

/** 64 blocks of 64 bytes: exactly the page's first lazy extension (4 KiB). */
function firstExtension(heap: GlobalAllocator): number[] {
  return Array.from({ length: 64 }, () => heap.malloc(64));
}

describe('secure mode', () => {
  it('shuffles the initial free list, where the normal mode hands out blocks in address order', () => {
    const normal = firstExtension(heapWith(false));
    expect(normal.every((block, i) => i === 0 || block === normal[i - 1]! + 64)).toBe(true);
    const secure = firstExtension(heapWith(true));
    expect(new Set(secure).size).toBe(64);
    expect([...secure].sort((a, b) => a - b)).toEqual([...secure].sort((a, b) => a - b).map((_, i) => Math.min(...secure) + i * 64));
    expect(secure.some((block, i) => i > 0 && block !== secure[i - 1]! + 64)).toBe(true);
  });

  it('reports a corrupted free-list link as HeapCorrupted instead of following it', () => {
    const heap = heapWith(true);
    const blocks = firstExtension(heap);
    heap.free(blocks[10]!);
    // A write after free overwrites the encoded link with an address the attacker chose.
    heap.memory.u32[blocks[10]! >>> 2] = blocks[20]!;
    expectAllocError(() => heap.check(), 'HeapCorrupted');
    const error = expectAllocError(() => heap.malloc(64), 'HeapCorrupted');
    expect(error.message).toMatch(/free list .* corrupted/);
  });

  it('reports a free block written after free (its marker gone) when it is handed out again', () => {
    const heap = heapWith(true);
    const blocks = firstExtension(heap);
    heap.free(blocks[3]!);
    heap.memory.u32[(blocks[3]! + 4) >>> 2] = 0xdeadbeef;
    expectAllocError(() => heap.malloc(64), 'HeapCorrupted');
  });

  /**
   * An owner with 1100 live 64-byte blocks and a second handle that freed the first: past
   * one page, so the first page is in the full queue and that remote free went through the
   * owner's delayed list, where the block is now the only one.
   */
  function blockOnDelayedList(secure: boolean): { owner: GlobalAllocator; blocks: number[] } {
    const [owner, other] = twoHandles({ secure });
    open.push(other, owner);
    const blocks = Array.from({ length: 1100 }, () => owner.malloc(64));
    expect(delayedState(owner, blocks[0]!)).toBe(USE_DELAYED_FREE);
    other.free(blocks[0]!);
    flushRemoteFrees(other);
    expect(Atomics.load(owner.memory.u32, (mimallocOf(owner).context.heap + HP_DELAYED_FREE) >>> 2)).toBe(blocks[0]);
    return { owner, blocks };
  }

  it('encodes the links of the delayed-free list and reports a corrupted one', () => {
    const { owner, blocks } = blockOnDelayedList(true);
    // The only block's link ends the list; encoded, it is not a plain 0.
    expect(owner.memory.u32[blocks[0]! >>> 2]).not.toBe(0);
    owner.check();
    // A write after free aims the link at a live block: check() and the drain refuse it.
    owner.memory.u32[blocks[0]! >>> 2] = blocks[500]!;
    expect(expectAllocError(() => owner.check(), 'HeapCorrupted').message).toMatch(/delayed-free list .* corrupted/);
    expectAllocError(() => collect(owner), 'HeapCorrupted');
  });

  it('detects double frees in both modes, locally and after the block was reused', () => {
    for (const secure of [false, true]) {
      const heap = heapWith(secure);
      const a = heap.malloc(48);
      heap.free(a);
      expectAllocError(() => heap.free(a), 'NotAllocated');
      const big = heap.malloc(3 * MiB);
      heap.free(big);
      expectAllocError(() => heap.free(big), 'NotAllocated');
      heap.check();
      expect(heap.usedBytes()).toBe(0);
    }
  });

  it('frees a live block whose data imitates its freed marker, and still refuses a second free', () => {
    for (const secure of [false, true]) {
      const heap = heapWith(secure);
      const cookie = mimallocOf(heap).context.cookie;
      // Each live block gets the marker of its own address written as data before its free;
      // the page's local_free, which the confirmation walks, grows with every free.
      const blocks = Array.from({ length: 40 }, () => heap.malloc(32));
      heap.free(blocks.pop()!);
      for (const block of blocks) {
        heap.memory.i32[(block + 4) >>> 2] = freedMarker(block, cookie);
        expect(heap.usableSize(block)).toBe(32);
        heap.free(block);
        expectAllocError(() => heap.free(block), 'NotAllocated');
      }
      heap.check();
      expect(heap.usedBytes()).toBe(0);
    }
  });

  it('never makes a freed marker that memset writes (one byte repeated), for any address and cookie', () => {
    // The block addresses (8-aligned) whose bare `address ^ cookie` would be such a word, for
    // cookies drawn from a fixed sequence (cookies are odd), and neighbours 8 and 256 away.
    const repeated = spellableMarkers(freedMarker);
    expect(repeated).toEqual([]);
  });

  it("frees, from another thread, a live block filled with one byte where the cookie's xor alone would be that word", () => {
    // Heaps are made until one's cookie puts such an address (for 16-byte blocks: one of 16
    // per heap) in its arena; about one heap in 17 has one.
    for (let attempt = 1; ; attempt++) {
      expect(attempt).toBeLessThan(2000);
      const [owner, other] = twoHandles();
      try {
        const targets = memsetMarkerAddresses(mimallocOf(owner).context.cookie, owner.arenaStart, owner.arenaEnd, 16);
        if (targets.size === 0) continue;
        const live: number[] = [];
        let found = 0;
        while (found === 0) {
          const block = owner.malloc(16);
          if (block === 0) break;
          if (targets.has(block)) found = block;
          else live.push(block);
        }
        // The address fell in a segment header, or past where 16-byte pages went: another heap.
        if (found === 0) continue;
        const byte = targets.get(found)!;
        owner.memory.u8.fill(byte, found, found + 16);
        other.free(found);
        expectAllocError(() => other.free(found), 'NotAllocated');
        for (const block of live) other.free(block);
        flushRemoteFrees(other);
        collect(owner, true);
        owner.check();
        expect(owner.usedBytes()).toBe(0);
        return;
      } finally {
        other.detach();
        owner.detach();
      }
    }
  });

  it("refuses the owner's second free of a block another thread put on its delayed list", () => {
    for (const secure of [false, true]) {
      const { owner, blocks } = blockOnDelayedList(secure);
      expectAllocError(() => owner.free(blocks[0]!), 'NotAllocated');
      for (const block of blocks.slice(1)) owner.free(block);
      collect(owner, true);
      expect(owner.usedBytes()).toBe(0);
      owner.check();
    }
  });

  it('reports a cycle in the delayed list met while confirming a marker, and frees once it is mended', () => {
    const { owner, blocks } = blockOnDelayedList(false);
    const context = mimallocOf(owner).context;
    // A write after free makes the only delayed block link to itself.
    owner.memory.u32[blocks[0]! >>> 2] = blocks[0]!;
    const live = blocks[500]!;
    owner.memory.i32[(live + 4) >>> 2] = freedMarker(live, context.cookie);
    expect(expectAllocError(() => owner.free(live), 'HeapCorrupted').message).toMatch(/delayed-free list .* has a cycle/);
    owner.memory.u32[blocks[0]! >>> 2] = 0;
    owner.free(live);
    for (const block of blocks.slice(1)) if (block !== live) owner.free(block);
    collect(owner, true);
    expect(owner.usedBytes()).toBe(0);
    owner.check();
  });

  it('does not detect a corrupted link in normal mode until check() walks it', () => {
    const heap = heapWith(false);
    const blocks = firstExtension(heap);
    heap.free(blocks[10]!);
    heap.memory.u32[blocks[10]! >>> 2] = 12345678;
    expectAllocError(() => heap.check(), 'HeapCorrupted');
  });
});

describe('extensions', () => {
  it('calls the deferred-free callback from the slow path with a rising heartbeat, and with force from collect', () => {
    const heap = heapWith(false);
    const calls: [boolean, number][] = [];
    const held: number[] = [];
    registerDeferredFree(heap, (force, heartbeat) => {
      calls.push([force, heartbeat]);
      // The callback may free (and allocate): that must not call it again.
      while (held.length > 0) heap.free(held.pop()!);
      heap.free(heap.malloc(5000));
    });
    for (let i = 0; i < 5000; i++) held.push(heap.malloc(24));
    expect(calls.length).toBeGreaterThan(5);
    expect(calls.every(([force]) => !force)).toBe(true);
    for (let i = 1; i < calls.length; i++) expect(calls[i]![1]).toBeGreaterThan(calls[i - 1]![1]);
    collect(heap, true);
    expect(calls.at(-1)![0]).toBe(true);
    registerDeferredFree(heap, null);
    const count = calls.length;
    for (let i = 0; i < 3000; i++) held.push(heap.malloc(24));
    expect(calls.length).toBe(count);
    for (const block of held) heap.free(block);
    heap.check();
    expect(heap.usedBytes()).toBe(0);
  });

  it('prints figures per size class and as JSON that agree with the heap', () => {
    const heap = heapWith(false);
    const blocks = [...Array.from({ length: 100 }, () => heap.malloc(100)), heap.malloc(5 * MiB)];
    const report = heapReport(heap);
    const bin112 = report.bins.find((bin) => bin.blockSize === 112)!;
    expect(bin112.usedBlocks).toBe(100);
    expect(report.liveBlocks).toBe(101);
    expect(report.segments.huge).toBe(2);
    expect(report.usedBytes).toBe(heap.usedBytes());
    const table = statsTable(heap, true);
    expect(table).toMatch(/^\s+\d+\s+112\s+1\s+0\s+100\s/m);
    expect(table).toContain('segments');
    expect(JSON.parse(statsJson(heap))).toEqual(JSON.parse(JSON.stringify(heapReport(heap))));
    for (const block of blocks) heap.free(block);
    expect(heapReport(heap).liveBlocks).toBe(0);
  });

  it('refuses unknown options and bad values, naming the valid ones', () => {
    expectAllocError(() => mimallocBackend.normalizeOptions({ secur: true }), 'InvalidParam');
    const error = expectAllocError(() => mimallocBackend.normalizeOptions({ secure: 'yes' }), 'InvalidParam');
    expect(error.message).toContain('true, false');
    expect(mimallocBackend.normalizeOptions({ secure: 'true' })).toEqual({ secure: true, delayedPageReuse: false, stats: false });
    expect(mimallocBackend.normalizeOptions({})).toEqual({ secure: false, delayedPageReuse: false, stats: false });
    expect(mimallocBackend.normalizeOptions({ delayedPageReuse: 'true' })).toEqual({ secure: false, delayedPageReuse: true, stats: false });
    expectAllocError(() => mimallocBackend.normalizeOptions({ delayedPageReuse: 1 }), 'InvalidParam');
    expect(mimallocBackend.normalizeOptions({ stats: 'true' })).toEqual({ secure: false, delayedPageReuse: false, stats: true });
    const heap = GlobalAllocator.create({ backend: 'mimalloc:secure=true', heapBytes: 8 * MiB });
    open.push(heap);
    expect(heapReport(heap).secure).toBe(true);
  });
});
