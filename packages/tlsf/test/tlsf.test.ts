import { BACKEND_STATE_MAX_BYTES, GlobalAllocator } from '@heaplab/core';
import { ARENAS_OPTION, MAX_POOLS, THREAD_CACHE_OPTION } from '@heaplab/core/backend';
import { makeBackendContext } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { listOf, STATE_BYTES, tlsfBackend } from '../src/index.js';
import { HEADER_BYTES, MAX_BLOCK_BYTES } from '../src/layout.js';
import { errorOf, makeTlsf, MiB, secondInstance } from './fixture.js';

const ARENA = 4 * MiB;

describe('tlsfBackend descriptor and options', () => {
  it("describes a locked backend named tlsf whose only options are core's tcache and arenas", () => {
    expect(tlsfBackend.name).toBe('tlsf');
    expect(tlsfBackend.concurrency).toBe('locked');
    expect(tlsfBackend.moduleUrl).toMatch(/tlsf\/src\/index\.ts$/);
    expect(tlsfBackend.stateBytes).toBe(STATE_BYTES);
    expect(STATE_BYTES).toBe(3364);
    expect(STATE_BYTES).toBeLessThanOrEqual(BACKEND_STATE_MAX_BYTES);
    expect(tlsfBackend.options).toEqual([THREAD_CACHE_OPTION, ARENAS_OPTION]);
    expect(tlsfBackend.normalizeOptions({})).toEqual({ tcache: true, arenas: 1 });
  });

  it('refuses any option but tcache and arenas, naming it', () => {
    const error = errorOf(() => tlsfBackend.normalizeOptions({ slCount: 16 }));
    expect(error.kind).toBe('InvalidParam');
    expect(error.message).toContain("'slCount'");
    expect(error.message).toContain("valid options: 'tcache', 'arenas'");
    expect(errorOf(() => tlsfBackend.normalizeOptions(null as unknown as Record<string, unknown>)).kind).toBe('InvalidParam');
  });

  it('takes tcache as a boolean or its string, refuses anything else, and a heap made with tcache=false has no cache', () => {
    expect(tlsfBackend.normalizeOptions({ tcache: false })).toEqual({ tcache: false, arenas: 1 });
    expect(tlsfBackend.normalizeOptions({ tcache: 'false' })).toEqual({ tcache: false, arenas: 1 });
    expect(tlsfBackend.normalizeOptions({ tcache: 'true' })).toEqual({ tcache: true, arenas: 1 });
    for (const value of ['nope', 1, 0, null]) {
      const error = errorOf(() => tlsfBackend.normalizeOptions({ tcache: value }));
      expect(error.kind).toBe('InvalidParam');
      expect(error.message).toContain("'tcache'");
      expect(error.message).toContain('true, false');
    }
    expect(errorOf(() => GlobalAllocator.create({ backend: 'tlsf:tcache=nope', heapBytes: 8 * MiB })).kind).toBe('InvalidParam');
    const bare = GlobalAllocator.create({ backend: 'tlsf:tcache=false', heapBytes: 8 * MiB });
    const cached = GlobalAllocator.create({ backend: 'tlsf', heapBytes: 8 * MiB });
    try {
      bare.free(bare.malloc(100));
      cached.free(cached.malloc(100));
      expect(bare.stats().threadCache).toBeNull();
      expect(cached.stats().threadCache).not.toBeNull();
    } finally {
      bare.detach();
      cached.detach();
    }
  });

  it('refuses a state area that is too small', () => {
    const ctx = { ...makeBackendContext(), stateBytes: STATE_BYTES - 4 };
    const error = errorOf(() => tlsfBackend.create(ctx, {}));
    expect(error.kind).toBe('InvalidParam');
    expect(error.message).toContain(String(STATE_BYTES));
  });

  it('is registered by importing the package, so GlobalAllocator finds it by name', () => {
    const heap = GlobalAllocator.create({ backend: 'tlsf', heapBytes: 8 * MiB });
    expect(heap.backendName).toBe('tlsf');
    const address = heap.malloc(100);
    expect(heap.usableSize(address)).toBe(104);
    heap.free(address);
    expect(heap.check().freeBlocks).toBe(1);
    heap.detach();
  });
});

describe('init and pools', () => {
  it('formats a pool as a front sentinel, one free block and an end sentinel', () => {
    const { tlsf, walk } = makeTlsf(8 * MiB);
    const blockSize = 8 * MiB - 16;
    expect(tlsf.totalBytes()).toBe(blockSize);
    expect(tlsf.usedBytes()).toBe(0);
    expect(tlsf.totalBytes() - tlsf.usedBytes()).toBe(blockSize);
    expect(walk.blocks()).toEqual([{ address: ARENA + 8, size: blockSize, free: true, next: ARENA + 8 * MiB - 8, nextFree: false, nextSize: 0 }]);
    expect(walk.prevPhysOf(ARENA + 8)).toBe(ARENA);
    expect(walk.listHead(listOf(blockSize))).toBe(ARENA + 8);
    expect(tlsf.stats()).toEqual({
      totalBytes: blockSize,
      usedBytes: 0,
      peakUsedBytes: 0,
      peakUsedSampled: false,
      requestedBytes: 0,
      grantedBytes: 0,
      metadataBytes: 16,
      largestFreeBlock: blockSize - HEADER_BYTES,
      liveBlocks: 0,
      freeBlocks: 1,
    });
    expect(tlsf.check()).toEqual({ blocks: 1, liveBlocks: 0, freeBlocks: 1, usedBytes: 0, freeBytes: blockSize, pools: 1 });
    walk.expectInvariants();
  });

  it('refuses ranges outside the arena or too small, leaving the state unformatted', () => {
    const { tlsf, init } = makeTlsf(8 * MiB, 0);
    for (const [start, size] of [
      [ARENA - 8, 64],
      [ARENA, 31],
      [ARENA + 8 * MiB - 16, 32],
      [ARENA + 1, 32],
      [ARENA, -8],
      [ARENA, 1.5],
    ] as const) {
      // The backend refuses them itself, and so does a heap (core checks the range first).
      expect(errorOf(() => tlsf.init(start, size)).kind, `init(${start}, ${size})`).toBe('InvalidParam');
      expect(errorOf(() => init(start, size)).kind, `heap init(${start}, ${size})`).toBe('InvalidParam');
    }
    expect(errorOf(() => tlsf.check()).message).toMatch(/not formatted/);
  });

  it('trims a range to 8-aligned bounds', () => {
    const { tlsf, walk, init } = makeTlsf(8 * MiB, 0);
    init(ARENA + 3, 1000);
    expect(walk.pools()).toEqual([{ start: ARENA + 8, end: ARENA + 1000 }]);
    expect(tlsf.totalBytes()).toBe(992 - 16);
    walk.expectInvariants();
  });

  it('manages several pools, adjacent ones included, and check() walks each', () => {
    const { tlsf, walk, addMemory } = makeTlsf(8 * MiB, 1 * MiB);
    addMemory(ARENA + 2 * MiB, 1 * MiB);
    addMemory(ARENA + 3 * MiB, 1 * MiB);
    expect(tlsf.totalBytes()).toBe(3 * (1 * MiB - 16));
    expect(tlsf.check().pools).toBe(3);
    const usable = 1 * MiB - 24;
    const blocks = [tlsf.allocate(usable, 8), tlsf.allocate(usable, 8), tlsf.allocate(usable, 8)];
    expect(blocks.sort((a, b) => a - b)).toEqual([ARENA + 16, ARENA + 2 * MiB + 16, ARENA + 3 * MiB + 16]);
    expect(tlsf.allocate(8, 8)).toBe(0);
    expect(tlsf.check()).toEqual({ blocks: 3, liveBlocks: 3, freeBlocks: 0, usedBytes: 3 * (1 * MiB - 16), freeBytes: 0, pools: 3 });
    for (const address of blocks) tlsf.release(address);
    // Adjacent pools are not merged: each keeps its own free block.
    expect(tlsf.check()).toEqual({ blocks: 3, liveBlocks: 0, freeBlocks: 3, usedBytes: 0, freeBytes: 3 * (1 * MiB - 16), pools: 3 });
    walk.expectInvariants();
  });

  it("has as many pools as core's table holds, which refuses one more, naming the limit", () => {
    const { tlsf, addMemory } = makeTlsf(8 * MiB, 64);
    for (let i = 1; i < MAX_POOLS; i++) addMemory(ARENA + i * 64, 64);
    const error = errorOf(() => addMemory(ARENA + 1 * MiB, 64));
    expect(error.kind).toBe('NoMemory');
    expect(error.message).toContain(`${MAX_POOLS} ranges`);
    expect(tlsf.check().pools).toBe(MAX_POOLS);
  });

  it('leaves overlap to core, which refuses a range over a pool', () => {
    const { tlsf, addMemory } = makeTlsf(8 * MiB, 1 * MiB);
    expect(errorOf(() => addMemory(ARENA + 512 * 1024, 1 * MiB)).kind).toBe('MemoryOverlap');
    expect(tlsf.check().pools).toBe(1);
  });
});

describe('allocate and release', () => {
  it('cuts a block from the front of the free block and leaves the rest free', () => {
    const { tlsf, walk } = makeTlsf();
    const address = tlsf.allocate(100, 8);
    expect(address).toBe(ARENA + 16);
    expect(tlsf.usableSize(address)).toBe(104);
    expect(tlsf.requestedSize(address)).toBe(100);
    expect(tlsf.usedBytes()).toBe(112);
    expect(walk.blocks().map((block) => [block.address, block.size, block.free])).toEqual([
      [ARENA + 8, 112, false],
      [ARENA + 120, 8 * MiB - 16 - 112, true],
    ]);
    walk.expectInvariants();
  });

  it('gives each zero-byte request its own minimal block', () => {
    const { tlsf } = makeTlsf();
    const a = tlsf.allocate(0, 8);
    const b = tlsf.allocate(0, 8);
    expect(b - a).toBe(16);
    expect(tlsf.usableSize(a)).toBe(8);
    expect(tlsf.requestedSize(a)).toBe(0);
  });

  it('merges a freed block with both free neighbours at once', () => {
    const { tlsf, walk } = makeTlsf();
    const [a, b, c] = [tlsf.allocate(200, 8), tlsf.allocate(300, 8), tlsf.allocate(400, 8)];
    tlsf.release(a!);
    tlsf.release(c!);
    expect(tlsf.check().freeBlocks).toBe(2);
    walk.expectInvariants();
    tlsf.release(b!);
    expect(walk.blocks()).toEqual([{ address: ARENA + 8, size: 8 * MiB - 16, free: true, next: ARENA + 8 * MiB - 8, nextFree: false, nextSize: 0 }]);
    expect(tlsf.check()).toMatchObject({ blocks: 1, freeBlocks: 1, liveBlocks: 0 });
  });

  it('reuses the most recently freed block of a size (LIFO lists)', () => {
    const { tlsf } = makeTlsf();
    const blocks = Array.from({ length: 6 }, () => tlsf.allocate(64, 8));
    tlsf.release(blocks[1]!);
    tlsf.release(blocks[3]!);
    expect(tlsf.allocate(60, 8)).toBe(blocks[3]);
    expect(tlsf.allocate(64, 8)).toBe(blocks[1]);
  });

  it("takes the head of the request's own list when it is big enough", () => {
    const { tlsf, walk } = makeTlsf();
    const a = tlsf.allocate(4152, 8); // a 4160-byte block
    tlsf.allocate(8, 8); // keeps a from merging with the rest
    tlsf.release(a);
    // 4128 bytes is on the same list as 4160; the good-fit search alone would start one
    // list higher and split the big block at the end of the pool instead.
    expect(listOf(4128)).toBe(listOf(4160));
    expect(tlsf.allocate(4120, 8)).toBe(a);
    expect(walk.sizeOf(a - 8)).toBe(4128);
    expect(walk.isUsed(a - 8 + 4128)).toBe(false);
    expect(walk.sizeOf(a - 8 + 4128)).toBe(32);
    walk.expectInvariants();
  });

  it('answers sizes beyond any heap with 0 and changes nothing', () => {
    const { tlsf } = makeTlsf();
    const before = tlsf.check();
    for (const size of [tlsf.totalBytes(), MAX_BLOCK_BYTES, MAX_BLOCK_BYTES + 1, 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      expect(tlsf.allocate(size, 8), `allocate(${size})`).toBe(0);
      expect(tlsf.allocate(size, 4096), `allocate(${size}, 4096)`).toBe(0);
    }
    expect(tlsf.allocate(8, 2 ** 30)).toBe(0);
    expect(tlsf.check()).toEqual(before);
  });

  it('reports a largest free block that one allocation really gets', () => {
    const { tlsf } = makeTlsf(8 * MiB);
    const blocks = [];
    for (let i = 0; i < 40; i++) blocks.push(tlsf.allocate(20_000 + i * 7_919, 8));
    for (let i = 0; i < 40; i += 3) tlsf.release(blocks[i]!);
    const largest = tlsf.stats().largestFreeBlock;
    expect(largest).toBeGreaterThan(20_000);
    const address = tlsf.allocate(largest, 8);
    expect(address).not.toBe(0);
    expect(tlsf.usableSize(address)).toBeGreaterThanOrEqual(largest);
    tlsf.check();
  });
});

describe('alignment', () => {
  it('aligns to every power of two up to 1 MiB, the gap going back to the free lists', () => {
    const { tlsf, walk } = makeTlsf(8 * MiB);
    tlsf.allocate(16, 8);
    let gaps = 0;
    for (let align = 16; align <= 1 * MiB; align *= 2) {
      const used = tlsf.usedBytes();
      // Each request is served from the big free block at the end of the pool.
      const tail = walk.blocks().at(-1)!;
      expect(tail.free).toBe(true);
      const address = tlsf.allocate(24, align);
      expect(address % align, `align ${align}`).toBe(0);
      // Only the block itself is taken (header, 24 bytes and the 8-byte alignment trailer):
      // no gap leaks into it.
      expect(tlsf.usedBytes() - used).toBe(40);
      expect(tlsf.usableSize(address)).toBe(24);
      expect(tlsf.blockLayout(address)).toEqual({ minSize: 24, maxSize: 24, minAlign: align, maxAlign: align });
      if ((tail.address + 8) % align === 0) {
        expect(address).toBe(tail.address + 8);
      } else {
        gaps++;
        expect(walk.isUsed(tail.address), `the gap before the ${align}-aligned block is free`).toBe(false);
        expect(tail.address + walk.sizeOf(tail.address)).toBe(address - 8);
        expect(walk.sizeOf(tail.address)).toBeGreaterThanOrEqual(16);
      }
      walk.expectInvariants();
    }
    expect(gaps).toBeGreaterThan(10);
    expect(tlsf.stats().freeBlocks).toBe(gaps + 1);
    tlsf.check();
  });

  it('gives every gap back when the aligned blocks are freed', () => {
    const { tlsf } = makeTlsf(8 * MiB);
    const blocks = [tlsf.allocate(8, 8)];
    for (let align = 16; align <= 64 * 1024; align *= 2) blocks.push(tlsf.allocate(100, align));
    for (const address of blocks) tlsf.release(address);
    expect(tlsf.check()).toMatchObject({ blocks: 1, freeBlocks: 1, usedBytes: 0 });
  });
});

describe('resize in place', () => {
  it('shrinks by splitting off the tail as a free block', () => {
    const { tlsf, walk } = makeTlsf();
    const p = tlsf.allocate(1000, 8);
    tlsf.allocate(100, 8);
    expect(tlsf.resizeInPlace(p, 100)).toBe(true);
    expect(tlsf.usableSize(p)).toBe(104);
    expect(tlsf.requestedSize(p)).toBe(100);
    expect(walk.isUsed(p - 8 + 112)).toBe(false);
    expect(walk.sizeOf(p - 8 + 112)).toBe(1008 - 112);
    walk.expectInvariants();
  });

  it('keeps a tail too small to be a free block when the next block is live', () => {
    const { tlsf, walk } = makeTlsf();
    const p = tlsf.allocate(1000, 8);
    tlsf.allocate(100, 8);
    expect(tlsf.resizeInPlace(p, 992)).toBe(true);
    expect(tlsf.usableSize(p)).toBe(1000);
    expect(tlsf.requestedSize(p)).toBe(992);
    expect(walk.isUsed(p - 8 + 1008)).toBe(true);
    walk.expectInvariants();
  });

  it('gives even a small tail to a free next block, which moves down', () => {
    const { tlsf, walk } = makeTlsf();
    const p = tlsf.allocate(1000, 8);
    const nextSize = walk.sizeOf(p - 8 + 1008);
    expect(tlsf.resizeInPlace(p, 992)).toBe(true);
    expect(tlsf.usableSize(p)).toBe(992);
    expect(walk.isUsed(p - 8 + 1000)).toBe(false);
    expect(walk.sizeOf(p - 8 + 1000)).toBe(nextSize + 8);
    walk.expectInvariants();
  });

  it('grows into a free right neighbour, keeping the contents', () => {
    const { memory, tlsf, walk } = makeTlsf();
    const p = tlsf.allocate(100, 8);
    const q = tlsf.allocate(100, 8);
    memory.u8.fill(0x5a, p, p + 100);
    tlsf.release(q);
    expect(tlsf.resizeInPlace(p, 5000)).toBe(true);
    expect(tlsf.usableSize(p)).toBe(5000);
    expect(tlsf.requestedSize(p)).toBe(5000);
    expect(memory.u8.subarray(p, p + 100).every((byte) => byte === 0x5a)).toBe(true);
    walk.expectInvariants();
  });

  it('takes all of a free neighbour when only 8 bytes would be left', () => {
    const { tlsf, walk } = makeTlsf();
    const p = tlsf.allocate(100, 8); // 112-byte block
    const q = tlsf.allocate(96, 8); // 104-byte block
    const r = tlsf.allocate(100, 8);
    tlsf.release(q);
    expect(tlsf.resizeInPlace(p, 200)).toBe(true);
    expect(tlsf.usableSize(p)).toBe(208);
    expect(tlsf.requestedSize(p)).toBe(200);
    expect(walk.prevPhysOf(r - 8)).toBe(p - 8);
    walk.expectInvariants();
  });

  it('refuses, changing nothing, when the next block is live or too small', () => {
    const { tlsf, walk } = makeTlsf();
    const p = tlsf.allocate(100, 8);
    const q = tlsf.allocate(100, 8);
    tlsf.allocate(100, 8);
    const before = tlsf.check();
    expect(tlsf.resizeInPlace(p, 120)).toBe(false);
    tlsf.release(q);
    const afterFree = tlsf.check();
    expect(tlsf.resizeInPlace(p, 300)).toBe(false);
    expect(tlsf.resizeInPlace(p, 2 ** 32)).toBe(false);
    expect(tlsf.check()).toEqual(afterFree);
    expect(before.liveBlocks - afterFree.liveBlocks).toBe(1);
    expect(tlsf.usableSize(p)).toBe(104);
    walk.expectInvariants();
  });

  it('makes GlobalAllocator.realloc keep the address when the neighbour allows it', () => {
    // Without the thread cache: with it, q's free stays in this thread's bin (live to tlsf),
    // and p's neighbours are blocks a refill took for the bin, so no neighbour is ever free.
    const heap = GlobalAllocator.create({ backend: tlsfBackend, heapBytes: 8 * MiB, options: { tcache: false } });
    const p = heap.malloc(100);
    const q = heap.malloc(100);
    expect(heap.realloc(p, 50)).toBe(p);
    expect(heap.realloc(p, 100)).toBe(p);
    // The block after p is live: growing beyond the 8 spare bytes moves it.
    const moved = heap.realloc(p, 1000);
    expect(moved).not.toBe(p);
    heap.free(q);
    expect(heap.realloc(moved, 100_000)).toBe(moved);
    heap.check();
    heap.detach();
  });
});

describe('stats and sharing', () => {
  it('counts requested, granted and metadata bytes exactly', () => {
    const { tlsf } = makeTlsf();
    const sizes = [0, 1, 7, 8, 9, 100, 1000, 4097];
    const blocks = sizes.map((size) => tlsf.allocate(size, 8));
    const usable = blocks.map((address) => tlsf.usableSize(address));
    const stats = tlsf.stats();
    expect(stats.requestedBytes).toBe(sizes.reduce((sum, size) => sum + size, 0));
    expect(stats.grantedBytes).toBe(usable.reduce((sum, size) => sum + size, 0));
    expect(stats.usedBytes).toBe(stats.grantedBytes + 8 * sizes.length);
    expect(stats.metadataBytes).toBe(8 * sizes.length + 16);
    expect(stats.liveBlocks).toBe(sizes.length);
    tlsf.release(blocks[6]!);
    expect(tlsf.stats().peakUsedBytes).toBe(stats.usedBytes);
    expect(tlsf.stats().usedBytes).toBe(stats.usedBytes - 1008);
  });

  it('is one heap for every instance over the same buffer', () => {
    const fixture = makeTlsf();
    const other = secondInstance(fixture);
    const address = fixture.tlsf.allocate(300, 64);
    expect(other.usableSize(address)).toBe(fixture.tlsf.usableSize(address));
    other.release(address);
    expect(fixture.tlsf.check()).toMatchObject({ liveBlocks: 0, freeBlocks: 1 });
  });
});

describe('addresses and sizes above 2^31', () => {
  it('serves, resizes and frees blocks on both sides of 2 GiB', () => {
    const { tlsf, walk, init } = makeTlsf(2048 * MiB + 8 * MiB, 0);
    init(2 ** 31 - 4 * MiB, 8 * MiB);
    const blocks = [];
    for (;;) {
      const address = tlsf.allocate(512 * 1024 - 8, 8);
      if (address === 0) break;
      blocks.push(address);
    }
    expect(blocks.length).toBe(15);
    expect(blocks.filter((address) => address > 2 ** 31).length).toBe(7);
    const high = blocks[blocks.length - 2]!;
    expect(tlsf.requestedSize(high)).toBe(512 * 1024 - 8);
    tlsf.release(blocks[blocks.length - 1]!);
    expect(tlsf.resizeInPlace(high, 600 * 1024)).toBe(true);
    const aligned = tlsf.allocate(100, 4096);
    expect(aligned).toBeGreaterThan(2 ** 31);
    expect(aligned % 4096).toBe(0);
    walk.expectInvariants();
    for (const address of [...blocks.slice(0, -1), aligned]) tlsf.release(address);
    expect(tlsf.check()).toMatchObject({ blocks: 1, freeBlocks: 1, usedBytes: 0 });
  });

  it('keeps a block larger than 2 GiB', () => {
    const { tlsf, walk } = makeTlsf(2048 * MiB + 8 * MiB);
    const total = 2048 * MiB + 8 * MiB - 16;
    expect(tlsf.stats().largestFreeBlock).toBe(total - 8);
    const big = tlsf.allocate(2 ** 31 + 100, 8);
    expect(big).toBe(ARENA + 16);
    expect(tlsf.usableSize(big)).toBe(2 ** 31 + 104);
    expect(tlsf.usedBytes()).toBe(2 ** 31 + 112);
    const small = tlsf.allocate(64, 8);
    expect(small).toBe(big + 2 ** 31 + 104 + 8);
    walk.expectInvariants();
    tlsf.release(big);
    tlsf.release(small);
    expect(tlsf.stats().largestFreeBlock).toBe(total - 8);
    expect(tlsf.check()).toMatchObject({ blocks: 1, freeBytes: total });
  });
});
