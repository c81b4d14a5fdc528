import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BASIC_STRATEGIES, BasicAllocator, basicBackend, type BasicStrategy } from '../../src/basic/index.js';
import { hex } from '../../src/errors.js';
import { BACKEND_COUNTERS, BACKEND_STATE_MAX_BYTES, BackendCounter } from '../../src/memory/heap-layout.js';
import type { BackendContext } from '../../src/backend/contract.js';
import { PoolTable } from '../../src/backend/pools.js';
import { ARENAS_OPTION, THREAD_CACHE_OPTION } from '../../src/backend/options.js';
import type { HeapMemory } from '../../src/interfaces.js';
import { GiB, KiB, MiB } from '../../src/sizes.js';
import { viewsOf } from '../../src/memory/shared-heap.js';
import { errorOf, makeBackendContext } from '@heaplab/test-kit';

const ARENA_START = 4 * MiB;
const ARENA_END = 12 * MiB;
const STATE_OFFSET = 65536;

interface Heap {
  memory: HeapMemory;
  ctx: BackendContext;
  alloc: BasicAllocator;
}

function makeContext(memory: HeapMemory, threadId = 1): BackendContext {
  return {
    ...makeBackendContext({ memory, threadId }),
    stateOffset: STATE_OFFSET,
    stateBytes: basicBackend.stateBytes,
    arenaStart: ARENA_START,
    arenaEnd: ARENA_END,
  };
}

/**
 * An allocator whose `init` and `addMemory` check and record the pool in core's table around
 * the backend's own work, as the facade does (the backend keeps no pool table of its own).
 */
function makeAllocator(ctx: BackendContext, strategy: BasicStrategy): BasicAllocator {
  const backend = basicBackend.create(ctx, basicBackend.normalizeOptions({ strategy }));
  expect(backend).toBeInstanceOf(BasicAllocator);
  const table = new PoolTable(ctx.memory, ctx.arenaStart, ctx.arenaEnd);
  const init = backend.init.bind(backend);
  const addMemory = backend.addMemory.bind(backend);
  backend.init = (start, size) => {
    table.checkNew(start, size);
    init(start, size);
    table.record(start, size);
  };
  backend.addMemory = (start, size) => {
    table.checkNew(start, size);
    addMemory(start, size);
    table.record(start, size);
  };
  return backend;
}

/** A fresh 12 MiB buffer with one pool of `poolBytes` at `poolStart`. */
function makeHeap(strategy: BasicStrategy, poolBytes = 8 * MiB, poolStart = ARENA_START): Heap {
  const memory = viewsOf(new SharedArrayBuffer(4 * MiB + 8 * MiB));
  const ctx = makeContext(memory);
  const alloc = makeAllocator(ctx, strategy);
  alloc.init(poolStart, poolBytes);
  return { memory, ctx, alloc };
}

function expectNotAllocated(fn: () => unknown, address: number): void {
  const error = errorOf(fn);
  expect(error.kind).toBe('NotAllocated');
  expect(error.message).toBe(`basic heap: ${hex(address)} is not the start of a live block (double free, interior pointer, or never allocated)`);
}

/** The size field of the block at `block` (white-box: reads the header word). */
function blockSizeAt(memory: HeapMemory, block: number): number {
  const hdr = memory.u32[block >>> 2]!;
  return hdr - (hdr & 7);
}

function isFreeBlock(memory: HeapMemory, block: number): boolean {
  return (memory.u32[block >>> 2]! & 1) === 0;
}

function fill(memory: HeapMemory, address: number, size: number, byte: number): void {
  memory.u8.fill(byte, address, address + size);
}

/** True when `size` bytes at `address` all equal `byte`; compares words where it can. */
function holds(memory: HeapMemory, address: number, size: number, byte: number): boolean {
  const word = (byte * 0x01010101) >>> 0;
  const words = size >>> 2;
  const u32 = memory.u32;
  const first = address >>> 2;
  for (let i = 0; i < words; i++) if (u32[first + i] !== word) return false;
  const u8 = memory.u8;
  for (let i = words * 4; i < size; i++) if (u8[address + i] !== byte) return false;
  return true;
}

describe('basicBackend descriptor and options', () => {
  it("describes a locked backend named basic with a strategy option and core's tcache and arenas", () => {
    expect(basicBackend.name).toBe('basic');
    expect(basicBackend.concurrency).toBe('locked');
    expect(basicBackend.moduleUrl).toMatch(/basic\/index\.(ts|js)$|chunk|index/);
    expect(basicBackend.stateBytes).toBe(64);
    expect(basicBackend.stateBytes).toBeLessThanOrEqual(BACKEND_STATE_MAX_BYTES);
    expect(basicBackend.options).toEqual([
      expect.objectContaining({ name: 'strategy', default: 'first-fit', values: ['first-fit', 'best-fit', 'worst-fit'] }),
      THREAD_CACHE_OPTION,
      ARENAS_OPTION,
    ]);
    expect(BASIC_STRATEGIES).toEqual(['first-fit', 'best-fit', 'worst-fit']);
  });

  it('fills in the default strategy and keeps valid ones', () => {
    expect(basicBackend.normalizeOptions({})).toEqual({ strategy: 'first-fit', tcache: true, arenas: 1 });
    for (const strategy of BASIC_STRATEGIES) {
      expect(basicBackend.normalizeOptions({ strategy })).toEqual({ strategy, tcache: true, arenas: 1 });
      expect(basicBackend.normalizeOptions({ strategy, tcache: false })).toEqual({ strategy, tcache: false, arenas: 1 });
    }
    expect(basicBackend.normalizeOptions({ tcache: 'false' })).toEqual({ strategy: 'first-fit', tcache: false, arenas: 1 });
  });

  it('refuses a tcache that is no boolean, naming the valid values', () => {
    for (const value of ['nope', 1, null, {}]) {
      const error = errorOf(() => basicBackend.normalizeOptions({ tcache: value }));
      expect(error.kind).toBe('InvalidParam');
      expect(error.message).toContain("'tcache'");
      expect(error.message).toContain('true, false');
    }
  });

  it('refuses a bad strategy, naming it and the valid values', () => {
    const error = errorOf(() => basicBackend.normalizeOptions({ strategy: 'next-fit' }));
    expect(error.kind).toBe('InvalidParam');
    expect(error.message).toContain('strategy');
    expect(error.message).toContain('"next-fit"');
    expect(error.message).toContain('first-fit, best-fit, worst-fit');
    expect(errorOf(() => basicBackend.normalizeOptions({ strategy: 3 })).kind).toBe('InvalidParam');
  });

  it('refuses unknown option keys, naming them', () => {
    const error = errorOf(() => basicBackend.normalizeOptions({ strategy: 'best-fit', colour: 'red' }));
    expect(error.kind).toBe('InvalidParam');
    expect(error.message).toContain("'colour'");
    expect(error.message).toContain("'strategy'");
    expect(error.message).toContain("'tcache'");
  });

  it('refuses a state area that is too small', () => {
    const memory = viewsOf(new SharedArrayBuffer(12 * MiB));
    const ctx = { ...makeContext(memory), stateBytes: 56 };
    expect(errorOf(() => basicBackend.create(ctx, { strategy: 'first-fit' })).kind).toBe('InvalidParam');
  });
});

describe('init', () => {
  it('formats one pool as one free block and a sentinel', () => {
    const { alloc } = makeHeap('first-fit', 1 * MiB);
    expect(alloc.totalBytes()).toBe(1 * MiB - 8);
    expect(alloc.usedBytes()).toBe(0);
    expect(alloc.totalBytes() - alloc.usedBytes()).toBe(1 * MiB - 8);
    const stats = alloc.stats();
    expect(stats.freeBlocks).toBe(1);
    expect(stats.liveBlocks).toBe(0);
    expect(stats.largestFreeBlock).toBe(1 * MiB - 16);
    expect(stats.metadataBytes).toBe(8);
    expect(alloc.check()).toEqual({ blocks: 1, liveBlocks: 0, freeBlocks: 1, usedBytes: 0, freeBytes: 1 * MiB - 8, pools: 1 });
  });

  it('aligns an unaligned range inwards', () => {
    const { alloc } = makeHeap('first-fit', 1000, ARENA_START + 3);
    // [start+8, start+1000) after alignment, minus the sentinel
    expect(alloc.totalBytes()).toBe(1000 - 8 - 8);
    expect(alloc.allocate(0, 8) % 8).toBe(0);
    alloc.check();
  });

  it('refuses ranges that are too small or outside the arena', () => {
    const memory = viewsOf(new SharedArrayBuffer(12 * MiB));
    const alloc = makeAllocator(makeContext(memory), 'first-fit');
    expect(errorOf(() => alloc.init(ARENA_START, 31)).kind).toBe('InvalidParam');
    expect(errorOf(() => alloc.init(ARENA_START + 1, 32)).kind).toBe('InvalidParam');
    expect(errorOf(() => alloc.init(ARENA_START - 8, 1024)).kind).toBe('InvalidParam');
    expect(errorOf(() => alloc.init(ARENA_END - 512, 1024)).kind).toBe('InvalidParam');
    alloc.init(ARENA_START, 32);
    expect(alloc.totalBytes()).toBe(24);
    expect(alloc.allocate(16, 8)).toBe(ARENA_START + 8);
    expect(alloc.allocate(0, 8)).toBe(0);
    alloc.check();
  });
});

describe('block sizes', () => {
  it('gives size 0 a minimum block, rounds up to 8 and reports requested sizes', () => {
    const { alloc } = makeHeap('first-fit', 1 * MiB);
    const zero = alloc.allocate(0, 8);
    expect(zero).toBe(ARENA_START + 8);
    expect(alloc.usableSize(zero)).toBe(16);
    expect(alloc.requestedSize(zero)).toBe(0);
    const odd = alloc.allocate(17, 8);
    expect(odd).toBe(ARENA_START + 32);
    expect(alloc.usableSize(odd)).toBe(24);
    expect(alloc.requestedSize(odd)).toBe(17);
    const stats = alloc.stats();
    expect(stats.usedBytes).toBe(24 + 32);
    expect(stats.grantedBytes).toBe(16 + 24);
    expect(stats.requestedBytes).toBe(17);
    expect(stats.liveBlocks).toBe(2);
    expect(stats.metadataBytes).toBe(2 * 8 + 8);
    alloc.check();
  });

  it('returns 0 for requests larger than the heap and changes nothing', () => {
    const { alloc } = makeHeap('first-fit', 1 * MiB);
    const before = alloc.stats();
    expect(alloc.allocate(1 * MiB, 8)).toBe(0);
    expect(alloc.allocate(2 ** 40, 8)).toBe(0);
    expect(alloc.allocate(Number.MAX_SAFE_INTEGER, 8)).toBe(0);
    expect(alloc.allocate(1 * MiB - 16 + 1, 8)).toBe(0);
    expect(alloc.stats()).toEqual(before);
    expect(alloc.allocate(1 * MiB - 16, 8)).toBe(ARENA_START + 8);
    expect(alloc.totalBytes() - alloc.usedBytes()).toBe(0);
    alloc.check();
  });

  it('keeps the peak of usedBytes', () => {
    const { alloc } = makeHeap('first-fit', 1 * MiB);
    const a = alloc.allocate(1000, 8);
    const b = alloc.allocate(2000, 8);
    alloc.release(a);
    alloc.release(b);
    expect(alloc.stats().peakUsedBytes).toBe(1008 + 2008);
    expect(alloc.stats().peakUsedSampled).toBe(false);
    expect(alloc.usedBytes()).toBe(0);
  });
});

describe('strategy choice', () => {
  /**
   * Free blocks of 64, 200, 104, 400, 104, 400 bytes at increasing addresses, separated by
   * live blocks, and nothing else free.
   */
  function holes(strategy: BasicStrategy) {
    const heap = makeHeap(strategy, 64 * KiB);
    const { alloc } = heap;
    const sizes = [64, 200, 104, 400, 104, 400];
    const free: number[] = [];
    for (const size of sizes) {
      free.push(alloc.allocate(size - 8, 8));
      alloc.allocate(8, 8);
    }
    expect(alloc.allocate(alloc.stats().largestFreeBlock, 8)).not.toBe(0);
    expect(alloc.stats().freeBlocks).toBe(0);
    for (const p of free) alloc.release(p);
    const stats = alloc.stats();
    expect(stats.freeBlocks).toBe(6);
    expect(stats.largestFreeBlock).toBe(392);
    alloc.check();
    for (let i = 0; i < sizes.length; i++) expect(blockSizeAt(heap.memory, free[i]! - 8)).toBe(sizes[i]);
    return { ...heap, free };
  }

  // For each request, the index (in `holes`) of the block each strategy must take.
  const cases: { size: number; picks: Record<BasicStrategy, number> }[] = [
    { size: 40, picks: { 'first-fit': 0, 'best-fit': 0, 'worst-fit': 3 } },
    { size: 90, picks: { 'first-fit': 1, 'best-fit': 2, 'worst-fit': 3 } },
    { size: 96, picks: { 'first-fit': 1, 'best-fit': 2, 'worst-fit': 3 } },
    { size: 150, picks: { 'first-fit': 1, 'best-fit': 1, 'worst-fit': 3 } },
    { size: 200, picks: { 'first-fit': 3, 'best-fit': 3, 'worst-fit': 3 } },
  ];

  for (const strategy of BASIC_STRATEGIES) {
    describe(strategy, () => {
      for (const { size, picks } of cases) {
        it(`puts a ${size}-byte request in block ${picks[strategy]}`, () => {
          const { alloc, free } = holes(strategy);
          expect(alloc.allocate(size, 8)).toBe(free[picks[strategy]]);
          alloc.check();
        });
      }

      it('returns 0 when no hole fits and changes nothing', () => {
        const { alloc } = holes(strategy);
        const before = alloc.stats();
        expect(alloc.allocate(393, 8)).toBe(0);
        expect(alloc.stats()).toEqual(before);
        alloc.check();
      });
    });
  }

  it('differs between strategies on the same sequence', () => {
    const picked = BASIC_STRATEGIES.map((strategy) => {
      const { alloc, free } = holes(strategy);
      return free.indexOf(alloc.allocate(90, 8));
    });
    expect(picked).toEqual([1, 2, 3]);
  });
});

for (const strategy of BASIC_STRATEGIES) {
  describe(`basic allocator, ${strategy}`, () => {
    describe('coalescing', () => {
      // Four 112-byte blocks a, b, c, d, then the free rest of the pool.
      function four() {
        const heap = makeHeap(strategy, 64 * KiB);
        const [a, b, c, d] = [0, 1, 2, 3].map(() => heap.alloc.allocate(100, 8)) as [number, number, number, number];
        expect([b - a, c - b, d - c]).toEqual([112, 112, 112]);
        return { ...heap, a, b, c, d };
      }

      it('merges with a free left neighbour', () => {
        const { alloc, memory, a, b } = four();
        alloc.release(a);
        expect(alloc.stats().freeBlocks).toBe(2);
        alloc.release(b);
        expect(alloc.stats().freeBlocks).toBe(2);
        expect(isFreeBlock(memory, a - 8)).toBe(true);
        expect(blockSizeAt(memory, a - 8)).toBe(224);
        expect(alloc.check()).toMatchObject({ liveBlocks: 2, freeBlocks: 2 });
      });

      it('merges with a free right neighbour', () => {
        const { alloc, memory, a, b } = four();
        alloc.release(b);
        alloc.release(a);
        expect(alloc.stats().freeBlocks).toBe(2);
        expect(blockSizeAt(memory, a - 8)).toBe(224);
        expect(alloc.check()).toMatchObject({ liveBlocks: 2, freeBlocks: 2 });
      });

      it('merges with both neighbours', () => {
        const { alloc, memory, a, b, c } = four();
        alloc.release(a);
        alloc.release(c);
        expect(alloc.stats().freeBlocks).toBe(3);
        alloc.release(b);
        expect(alloc.stats().freeBlocks).toBe(2);
        expect(blockSizeAt(memory, a - 8)).toBe(336);
        expect(alloc.check()).toMatchObject({ liveBlocks: 1, freeBlocks: 2, usedBytes: 112 });
      });

      it('merges with the free rest of the pool and ends with one free block', () => {
        const { alloc, a, b, c, d } = four();
        alloc.release(d);
        expect(alloc.stats().freeBlocks).toBe(1);
        alloc.release(b);
        alloc.release(a);
        alloc.release(c);
        expect(alloc.usedBytes()).toBe(0);
        expect(alloc.stats()).toMatchObject({ freeBlocks: 1, liveBlocks: 0, largestFreeBlock: 64 * KiB - 16, requestedBytes: 0, grantedBytes: 0 });
        expect(alloc.check()).toEqual({ blocks: 1, liveBlocks: 0, freeBlocks: 1, usedBytes: 0, freeBytes: 64 * KiB - 8, pools: 1 });
      });
    });

    describe('alignment', () => {
      it('keeps a gap too small for a block out of the way', () => {
        const { alloc } = makeHeap(strategy, 1 * MiB);
        // payload start+16 would leave an 8-byte gap: it must move to a 24-byte gap
        expect(alloc.allocate(8, 16)).toBe(ARENA_START + 32);
        expect(alloc.stats().freeBlocks).toBe(2);
        alloc.check();
      });

      for (let align = 8; align <= 65536; align *= 2) {
        it(`aligns payloads to ${align} and leaks nothing`, () => {
          const { alloc, memory } = makeHeap(strategy, 4 * MiB);
          const live: [number, number, number][] = [];
          let fillByte = 1;
          for (const size of [0, 1, 24, 100, 1000, 5000, 13]) {
            // a small misaligning neighbour before each aligned block
            const small = alloc.allocate(size % 40, 8);
            expect(small).not.toBe(0);
            live.push([small, size % 40, fillByte]);
            fill(memory, small, size % 40, fillByte++);
            const p = alloc.allocate(size, align);
            expect(p).not.toBe(0);
            expect(p % align).toBe(0);
            expect(alloc.usableSize(p)).toBeGreaterThanOrEqual(size);
            expect(alloc.requestedSize(p)).toBe(size);
            live.push([p, size, fillByte]);
            fill(memory, p, size, fillByte++);
            alloc.check();
          }
          for (const [p, size, byte] of live) expect(holds(memory, p, size, byte)).toBe(true);
          // free every other block first, then the rest
          for (let i = 0; i < live.length; i += 2) alloc.release(live[i]![0]);
          alloc.check();
          for (let i = 1; i < live.length; i += 2) alloc.release(live[i]![0]);
          expect(alloc.usedBytes()).toBe(0);
          expect(alloc.stats()).toMatchObject({ freeBlocks: 1, liveBlocks: 0, largestFreeBlock: 4 * MiB - 16 });
          alloc.check();
        });
      }
    });

    describe('invalid addresses', () => {
      it('refuses double frees, interior pointers and foreign addresses without damage', () => {
        const { alloc, memory } = makeHeap(strategy, 1 * MiB);
        const p1 = alloc.allocate(100, 8);
        const p2 = alloc.allocate(200, 8);
        const p3 = alloc.allocate(50, 8);
        const p4 = alloc.allocate(64, 8);
        fill(memory, p1, 100, 0xa1);
        fill(memory, p3, 50, 0xa3);
        fill(memory, p4, 64, 0xa4);
        alloc.release(p2);
        const intact = (): void => {
          alloc.check();
          expect(holds(memory, p1, 100, 0xa1)).toBe(true);
          expect(holds(memory, p3, 50, 0xa3)).toBe(true);
          expect(holds(memory, p4, 64, 0xa4)).toBe(true);
        };
        const stats = alloc.stats();
        const bad = [
          p2, // double free
          p1 + 8, // interior pointer
          p1 + 4, // interior and misaligned
          p1 - 8, // the header
          ARENA_START + 512 * KiB, // never allocated, inside the free rest of the pool
          ARENA_START + 2 * MiB, // in the arena but beyond the pool
          ARENA_START + 1 * MiB, // just past the pool (its sentinel's successor)
          ARENA_START + 1 * MiB - 8, // the sentinel itself
          ARENA_END + 64, // beyond the arena and the buffer
          0,
          8,
          STATE_OFFSET + 8, // inside the control state
          -8,
          2 ** 32,
          1.5,
          Number.NaN,
        ];
        for (const address of bad) {
          expectNotAllocated(() => alloc.release(address), address);
          expectNotAllocated(() => alloc.usableSize(address), address);
          expectNotAllocated(() => alloc.requestedSize(address), address);
          expectNotAllocated(() => alloc.resizeInPlace(address, 8), address);
          intact();
          expect(alloc.stats()).toEqual(stats);
        }
        // a freed block merged into its neighbour is still not live
        alloc.release(p1);
        expectNotAllocated(() => alloc.release(p1), p1);
        expectNotAllocated(() => alloc.release(p2), p2);
        alloc.check();
        expect(holds(memory, p3, 50, 0xa3)).toBe(true);
        // user data that looks like a USED header without the right tag is refused
        const q = alloc.allocate(200, 8);
        memory.u32[(q + 64) >>> 2] = 64 | 1 | 2;
        memory.u32[(q + 68) >>> 2] = 0x12345600;
        expectNotAllocated(() => alloc.release(q + 72), q + 72);
        alloc.check();
      });

      it('detects a damaged tag', () => {
        const { alloc, memory } = makeHeap(strategy, 1 * MiB);
        const p = alloc.allocate(100, 8);
        memory.u32[(p - 4) >>> 2] = memory.u32[(p - 4) >>> 2]! ^ 0x100;
        expectNotAllocated(() => alloc.release(p), p);
        const error = errorOf(() => alloc.check());
        expect(error.kind).toBe('HeapCorrupted');
        expect(error.message).toContain(hex(p - 8));
      });
    });

    describe('resizeInPlace', () => {
      it('grows into a free next block, taking all of it when the rest is too small', () => {
        const { alloc, memory } = makeHeap(strategy, 64 * KiB);
        const a = alloc.allocate(100, 8);
        const b = alloc.allocate(100, 8);
        const c = alloc.allocate(100, 8);
        fill(memory, a, 100, 0x11);
        fill(memory, c, 100, 0x33);
        alloc.release(b);
        const free = alloc.stats().freeBlocks;
        expect(alloc.resizeInPlace(a, 200)).toBe(true);
        expect(alloc.usableSize(a)).toBe(216);
        expect(alloc.requestedSize(a)).toBe(200);
        expect(alloc.stats().freeBlocks).toBe(free - 1);
        expect(holds(memory, a, 100, 0x11)).toBe(true);
        expect(holds(memory, c, 100, 0x33)).toBe(true);
        expect(alloc.check()).toMatchObject({ liveBlocks: 2, usedBytes: 224 + 112 });
      });

      it('grows into a free next block and splits off the rest', () => {
        const { alloc, memory } = makeHeap(strategy, 64 * KiB);
        const a = alloc.allocate(100, 8);
        const b = alloc.allocate(300, 8);
        const c = alloc.allocate(100, 8);
        fill(memory, a, 100, 0x11);
        alloc.release(b);
        const free = alloc.stats().freeBlocks;
        expect(alloc.resizeInPlace(a, 150)).toBe(true);
        expect(alloc.usableSize(a)).toBe(152);
        expect(alloc.stats().freeBlocks).toBe(free);
        expect(isFreeBlock(memory, a - 8 + 160)).toBe(true);
        expect(blockSizeAt(memory, a - 8 + 160)).toBe(112 + 312 - 160);
        expect(holds(memory, a, 100, 0x11)).toBe(true);
        expect(c).toBe(a + 112 + 312);
        alloc.check();
      });

      it('fails and changes nothing when the next block is live or too small', () => {
        const { alloc, memory } = makeHeap(strategy, 64 * KiB);
        const a = alloc.allocate(100, 8);
        const b = alloc.allocate(100, 8);
        alloc.allocate(100, 8);
        const before = alloc.stats();
        const header = memory.u32[(a - 8) >>> 2];
        expect(alloc.resizeInPlace(a, 200)).toBe(false);
        expect(alloc.stats()).toEqual(before);
        expect(memory.u32[(a - 8) >>> 2]).toBe(header);
        expect(alloc.usableSize(a)).toBe(104);
        expect(alloc.requestedSize(a)).toBe(100);
        alloc.release(b);
        const afterFree = alloc.stats();
        expect(alloc.resizeInPlace(a, 1000)).toBe(false);
        expect(alloc.stats()).toEqual(afterFree);
        alloc.check();
      });

      it('shrinks by splitting off the tail', () => {
        const { alloc, memory } = makeHeap(strategy, 64 * KiB);
        const a = alloc.allocate(1000, 8);
        alloc.allocate(8, 8);
        fill(memory, a, 1000, 0x5a);
        const free = alloc.stats().freeBlocks;
        expect(alloc.resizeInPlace(a, 100)).toBe(true);
        expect(alloc.usableSize(a)).toBe(104);
        expect(alloc.requestedSize(a)).toBe(100);
        expect(alloc.stats().freeBlocks).toBe(free + 1);
        expect(isFreeBlock(memory, a - 8 + 112)).toBe(true);
        expect(blockSizeAt(memory, a - 8 + 112)).toBe(1008 - 112);
        expect(holds(memory, a, 100, 0x5a)).toBe(true);
        expect(alloc.check()).toMatchObject({ usedBytes: 112 + 24 });
      });

      it('shrinks into a free next block, even by less than a minimum block', () => {
        const { alloc, memory } = makeHeap(strategy, 64 * KiB);
        const a = alloc.allocate(200, 8);
        const b = alloc.allocate(100, 8);
        alloc.allocate(8, 8);
        alloc.release(b);
        const free = alloc.stats().freeBlocks;
        expect(alloc.resizeInPlace(a, 190)).toBe(true);
        expect(alloc.usableSize(a)).toBe(192);
        expect(alloc.stats().freeBlocks).toBe(free);
        expect(blockSizeAt(memory, a - 8 + 200)).toBe(8 + 112);
        alloc.check();
      });

      it('keeps a tail too small to split and records the new requested size', () => {
        const { alloc } = makeHeap(strategy, 64 * KiB);
        const a = alloc.allocate(100, 8);
        alloc.allocate(8, 8);
        expect(alloc.resizeInPlace(a, 90)).toBe(true);
        expect(alloc.usableSize(a)).toBe(104);
        expect(alloc.requestedSize(a)).toBe(90);
        expect(alloc.stats().requestedBytes).toBe(98);
        alloc.check();
      });
    });

    describe('addMemory', () => {
      it('manages two pools and allocates in both', () => {
        const { alloc } = makeHeap(strategy, 1 * MiB);
        const second = ARENA_START + 4 * MiB;
        alloc.addMemory(second, 1 * MiB);
        expect(alloc.totalBytes()).toBe(2 * (1 * MiB - 8));
        expect(alloc.check()).toMatchObject({ pools: 2, freeBlocks: 2 });
        const live: number[] = [];
        for (;;) {
          const p = alloc.allocate(60 * KiB, 8);
          if (p === 0) break;
          live.push(p);
        }
        const inFirst = live.filter((p) => p >= ARENA_START && p < ARENA_START + 1 * MiB).length;
        const inSecond = live.filter((p) => p >= second && p < second + 1 * MiB).length;
        expect(inFirst).toBe(17);
        expect(inSecond).toBe(17);
        expect(alloc.check()).toMatchObject({ pools: 2, liveBlocks: 34 });
        for (const p of live) alloc.release(p);
        expect(alloc.usedBytes()).toBe(0);
        expect(alloc.check()).toMatchObject({ pools: 2, freeBlocks: 2, blocks: 2 });
      });

      it('never merges blocks across adjacent pools', () => {
        const { alloc } = makeHeap(strategy, 1 * MiB);
        alloc.addMemory(ARENA_START + 1 * MiB, 1 * MiB);
        const a = alloc.allocate(1 * MiB - 16, 8);
        const b = alloc.allocate(1 * MiB - 16, 8);
        expect([a, b].sort((x, y) => x - y)).toEqual([ARENA_START + 8, ARENA_START + 1 * MiB + 8]);
        expect(alloc.allocate(0, 8)).toBe(0);
        alloc.release(a);
        alloc.release(b);
        expect(alloc.check()).toMatchObject({ pools: 2, freeBlocks: 2 });
        expect(alloc.stats().largestFreeBlock).toBe(1 * MiB - 16);
      });

      it('refuses overlapping, outside and too-small ranges, and more than 64 pools', () => {
        const { alloc } = makeHeap(strategy, 1 * MiB);
        expect(errorOf(() => alloc.addMemory(ARENA_START + 512 * KiB, 1 * MiB)).kind).toBe('MemoryOverlap');
        expect(errorOf(() => alloc.addMemory(ARENA_START - 1 * MiB, 1 * MiB + 8)).kind).toBe('InvalidParam');
        expect(errorOf(() => alloc.addMemory(ARENA_END - 1024, 2048)).kind).toBe('InvalidParam');
        expect(errorOf(() => alloc.addMemory(ARENA_START + 2 * MiB + 1, 32)).kind).toBe('InvalidParam');
        alloc.check();
        expect(alloc.totalBytes()).toBe(1 * MiB - 8);
        // an unaligned range is aligned inwards
        alloc.addMemory(ARENA_START + 2 * MiB + 3, 1000);
        expect(alloc.totalBytes()).toBe(1 * MiB - 8 + (1000 - 8 - 8));
        for (let i = 2; i < 64; i++) alloc.addMemory(ARENA_START + 3 * MiB + i * 64, 64);
        const full = errorOf(() => alloc.addMemory(ARENA_START + 5 * MiB, 64));
        expect(full.kind).toBe('NoMemory');
        expect(full.message).toContain('64');
        expect(alloc.check()).toMatchObject({ pools: 64, freeBlocks: 64 });
      });
    });

    it('fills the heap until allocate returns 0, then frees everything', () => {
      const { alloc, memory } = makeHeap(strategy, 1 * MiB);
      const total = alloc.totalBytes();
      const live: number[] = [];
      const sizes = [24, 100, 1000, 7, 5000, 33, 0, 300];
      for (let i = 0; ; i++) {
        const p = alloc.allocate(sizes[i % sizes.length]!, i % 5 === 0 ? 64 : 8);
        if (p === 0) break;
        live.push(p);
      }
      // then the smallest requests until even those fail: no free block can remain
      for (;;) {
        const p = alloc.allocate(0, 8);
        if (p === 0) break;
        live.push(p);
      }
      expect(alloc.stats().freeBlocks).toBe(0);
      expect(alloc.usedBytes()).toBe(total);
      expect(alloc.totalBytes() - alloc.usedBytes()).toBe(0);
      live.forEach((p, i) => {
        fill(memory, p, 16, i & 0xff);
      });
      live.forEach((p, i) => {
        expect(holds(memory, p, 16, i & 0xff)).toBe(true);
      });
      alloc.check();
      // free in a scrambled but deterministic order
      const order = live.map((p, i) => [Math.imul(i + 1, 0x9e3779b1) >>> 0, p] as const).sort((x, y) => x[0] - y[0]);
      for (const [, p] of order) alloc.release(p);
      expect(alloc.usedBytes()).toBe(0);
      expect(alloc.stats()).toMatchObject({ freeBlocks: 1, liveBlocks: 0, largestFreeBlock: total - 8, requestedBytes: 0, grantedBytes: 0 });
      alloc.check();
    });

    it('matches a model over random allocate/release/resize sequences', () => {
      type Op = { kind: 'alloc'; size: number; alignLog: number } | { kind: 'free'; pick: number } | { kind: 'resize'; pick: number; size: number };
      const size = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 4000 }));
      const op: fc.Arbitrary<Op> = fc.oneof(
        {
          weight: 5,
          arbitrary: fc.record({
            kind: fc.constant('alloc' as const),
            size,
            alignLog: fc.oneof(fc.constant(3), fc.integer({ min: 3, max: 12 })),
          }),
        },
        { weight: 3, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
        { weight: 2, arbitrary: fc.record({ kind: fc.constant('resize' as const), pick: fc.nat(), size }) },
      );
      const POOL = 32 * KiB;
      fc.assert(
        fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
          const { alloc, memory } = makeHeap(strategy, POOL);
          const model = new Map<number, { size: number; fill: number }>();
          let nextFill = 1;
          const pick = (n: number): number => [...model.keys()][n % model.size]!;
          const verify = (): void => {
            alloc.check();
            let requested = 0;
            let granted = 0;
            let end = 0;
            const sorted = [...model.entries()].sort((x, y) => x[0] - y[0]);
            for (const [p, { size: n, fill: byte }] of sorted) {
              const usable = alloc.usableSize(p);
              expect(usable).toBeGreaterThanOrEqual(n);
              expect(alloc.requestedSize(p)).toBe(n);
              expect(p - 8).toBeGreaterThanOrEqual(end); // no overlap, headers included
              expect(p - 8).toBeGreaterThanOrEqual(ARENA_START);
              expect(p + usable).toBeLessThanOrEqual(ARENA_START + POOL - 8);
              end = p + usable;
              expect(holds(memory, p, n, byte)).toBe(true);
              requested += n;
              granted += usable;
            }
            const stats = alloc.stats();
            expect(stats.liveBlocks).toBe(model.size);
            expect(stats.requestedBytes).toBe(requested);
            expect(stats.grantedBytes).toBe(granted);
            expect(stats.usedBytes).toBe(granted + 8 * model.size);
            expect(stats.peakUsedBytes).toBeGreaterThanOrEqual(stats.usedBytes);
          };
          for (const o of ops) {
            if (o.kind === 'alloc') {
              const align = 2 ** o.alignLog;
              const largest = alloc.stats().largestFreeBlock;
              const p = alloc.allocate(o.size, align);
              if (align === 8) expect(p !== 0).toBe(largest > 0 && o.size <= largest);
              if (p !== 0) {
                expect(p % align).toBe(0);
                expect(model.has(p)).toBe(false);
                const byte = (nextFill++ % 255) + 1;
                fill(memory, p, o.size, byte);
                model.set(p, { size: o.size, fill: byte });
              }
            } else if (model.size > 0) {
              const p = pick(o.pick);
              if (o.kind === 'free') {
                alloc.release(p);
                model.delete(p);
                expectNotAllocated(() => alloc.release(p), p);
              } else {
                const old = model.get(p)!;
                const usable = alloc.usableSize(p);
                const ok = alloc.resizeInPlace(p, o.size);
                if (o.size <= usable) expect(ok).toBe(true);
                if (ok) {
                  expect(holds(memory, p, Math.min(old.size, o.size), old.fill)).toBe(true);
                  const byte = (nextFill++ % 255) + 1;
                  fill(memory, p, o.size, byte);
                  model.set(p, { size: o.size, fill: byte });
                } else {
                  expect(alloc.usableSize(p)).toBe(usable);
                }
              }
            }
            verify();
          }
          for (const p of model.keys()) alloc.release(p);
          expect(alloc.usedBytes()).toBe(0);
          expect(alloc.stats()).toMatchObject({ freeBlocks: 1, largestFreeBlock: POOL - 16 });
          alloc.check();
        }),
        { numRuns: 100 },
      );
    });
  });
}

describe('shared state', () => {
  it('lets a second instance over the same buffer see and edit the same heap', () => {
    const { alloc, memory } = makeHeap('best-fit', 1 * MiB);
    const other = makeAllocator(makeContext(memory, 2), 'best-fit');
    const p = alloc.allocate(100, 8);
    expect(other.usableSize(p)).toBe(104);
    expect(other.stats()).toEqual(alloc.stats());
    other.release(p);
    expect(alloc.stats().liveBlocks).toBe(0);
    expectNotAllocated(() => alloc.release(p), p);
    const q = other.allocate(100, 8);
    expect(q).toBe(p);
    expect(alloc.requestedSize(q)).toBe(100);
    alloc.check();
    other.check();
  });

  it('check() reports a missing format, bad footers, bad counters and list cycles', () => {
    const memory = viewsOf(new SharedArrayBuffer(12 * MiB));
    const unformatted = makeAllocator(makeContext(memory), 'first-fit');
    expect(errorOf(() => unformatted.check()).kind).toBe('HeapCorrupted');

    const footer = makeHeap('first-fit', 64 * KiB);
    const a = footer.alloc.allocate(100, 8);
    footer.alloc.allocate(100, 8);
    footer.alloc.release(a);
    footer.memory.u32[(a - 8 + 112 - 4) >>> 2] = 8;
    const e1 = errorOf(() => footer.alloc.check());
    expect(e1.kind).toBe('HeapCorrupted');
    expect(e1.message).toContain(hex(a - 8));
    expect(e1.message).toContain('footer');

    const counter = makeHeap('first-fit', 64 * KiB);
    counter.alloc.allocate(100, 8);
    counter.memory.u32[(BACKEND_COUNTERS >>> 2) + BackendCounter.used] = 8; // usedBytes
    expect(errorOf(() => counter.alloc.check()).message).toContain('usedBytes');

    const cycle = makeHeap('first-fit', 64 * KiB);
    const b = cycle.alloc.allocate(100, 8);
    cycle.alloc.allocate(100, 8);
    cycle.alloc.release(b);
    const tail = b - 8 + 224; // the free rest of the pool, last in the list
    cycle.memory.u32[(tail + 8) >>> 2] = b - 8;
    const e2 = errorOf(() => cycle.alloc.check());
    expect(e2.kind).toBe('HeapCorrupted');
    expect(e2.message).toContain('free list');
  });
});

describe('addresses at and above 2^31', () => {
  it('allocates, aligns and frees across the 2 GiB boundary', (context) => {
    let buffer: SharedArrayBuffer;
    try {
      buffer = new SharedArrayBuffer(2 * GiB + 8 * MiB);
    } catch {
      context.skip();
      return;
    }
    const memory = viewsOf(buffer);
    const ctx: BackendContext = { ...makeContext(memory), arenaStart: 4 * MiB, arenaEnd: 2 * GiB + 8 * MiB };
    const alloc = makeAllocator(ctx, 'first-fit');
    const start = 2 * GiB - 1 * MiB;
    alloc.init(start, 2 * MiB);
    alloc.addMemory(2 * GiB + 4 * MiB, 4 * MiB);
    const live: number[] = [];
    for (let i = 0; ; i++) {
      const p = alloc.allocate(100 * KiB + i, i % 3 === 0 ? 4096 : 8);
      if (p === 0) break;
      expect(p % (i % 3 === 0 ? 4096 : 8)).toBe(0);
      fill(memory, p, 16, i + 1);
      live.push(p);
    }
    expect(live.some((p) => p < 2 ** 31)).toBe(true);
    expect(live.some((p) => p > 2 ** 31 && p < 2 * GiB + 1 * MiB)).toBe(true);
    expect(live.some((p) => p > 2 * GiB + 4 * MiB)).toBe(true);
    alloc.check();
    live.forEach((p, i) => {
      expect(holds(memory, p, 16, i + 1)).toBe(true);
    });
    expect(alloc.usableSize(live[live.length - 1]!)).toBeGreaterThanOrEqual(100 * KiB);
    expectNotAllocated(() => alloc.release(live[0]! + 8), live[0]! + 8);
    for (let i = 0; i < live.length; i += 2) alloc.release(live[i]!);
    for (let i = 1; i < live.length; i += 2) alloc.release(live[i]!);
    expect(alloc.usedBytes()).toBe(0);
    expect(alloc.check()).toMatchObject({ pools: 2, freeBlocks: 2 });
  });
});
