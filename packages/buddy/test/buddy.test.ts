import { BACKEND_STATE_MAX_BYTES, GiB, GlobalAllocator, hex, KiB, MiB } from '@heaplab/core';
import { ARENAS_OPTION, THREAD_CACHE_OPTION } from '@heaplab/core/backend';
import { BackendFixture, errorOf, expectAllocError, makeBackendContext, Random, recordPool } from '@heaplab/test-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { BUDDY_STATE_BYTES, BuddyAllocator, buddyBackend } from '../src/index.js';
import { FB_MAP_START, FB_PREV, ST_LENGTHS, ST_NON_EMPTY } from '../src/layout.js';
import { expectBuddyInvariants, freeSnapshot, walkBlocks } from './heap-walk.js';

const ARENA_START = 4 * MiB;

/**
 * A buddy heap over a fresh buffer whose arena is `arenaBytes`, formatted with
 * `[start, start + size)` and that range recorded in core's pool table, as a heap would.
 */
function makeFixture(arenaBytes = 8 * MiB, start = ARENA_START, size = arenaBytes - (start - ARENA_START)) {
  return new BackendFixture(buddyBackend, {}, { arenaBytes }).init(start, size);
}

/** The allocator of `makeFixture`. */
function makeBuddy(arenaBytes = 8 * MiB, start = ARENA_START, size = arenaBytes - (start - ARENA_START)): BuddyAllocator {
  return makeFixture(arenaBytes, start, size).backend;
}

/** Expects `address` to be refused as no live block, with the heap unchanged. */
function expectRefused(buddy: BuddyAllocator, address: number): void {
  const before = { stats: buddy.stats(), free: freeSnapshot(buddy.blocks) };
  for (const action of [
    () => buddy.release(address),
    () => buddy.usableSize(address),
    () => buddy.requestedSize(address),
    () => buddy.resizeInPlace(address, 8),
  ]) {
    const error = errorOf(action);
    expect(error.kind).toBe('NotAllocated');
    expect(error.message).toContain(hex(address));
  }
  expect(buddy.stats()).toEqual(before.stats);
  expect(freeSnapshot(buddy.blocks)).toEqual(before.free);
  buddy.check();
}

describe('buddyBackend descriptor and options', () => {
  it("describes a locked backend named buddy whose only options are core's tcache and arenas", () => {
    expect(buddyBackend.name).toBe('buddy');
    expect(buddyBackend.concurrency).toBe('locked');
    expect(buddyBackend.moduleUrl).toMatch(/buddy\/src\/index\.ts$/);
    expect(buddyBackend.options).toEqual([THREAD_CACHE_OPTION, ARENAS_OPTION]);
    expect(buddyBackend.stateBytes).toBe(BUDDY_STATE_BYTES);
    expect(BUDDY_STATE_BYTES).toBe(264);
    expect(BUDDY_STATE_BYTES).toBeLessThanOrEqual(BACKEND_STATE_MAX_BYTES);
    expect(buddyBackend.normalizeOptions({})).toEqual({ tcache: true, arenas: 1 });
  });

  it('refuses any option but tcache and arenas, naming them', () => {
    const error = errorOf(() => buddyBackend.normalizeOptions({ minOrder: 5 }));
    expect(error.kind).toBe('InvalidParam');
    expect(error.message).toContain("'minOrder'");
    expect(error.message).toContain("valid options: 'tcache', 'arenas'");
    expect(errorOf(() => GlobalAllocator.create({ backend: 'buddy:strategy=best-fit', heapBytes: 4 * MiB })).kind).toBe('InvalidParam');
  });

  it('takes tcache=false from a spec and refuses a tcache that is no boolean', () => {
    expect(buddyBackend.normalizeOptions({ tcache: false })).toEqual({ tcache: false, arenas: 1 });
    const error = errorOf(() => buddyBackend.normalizeOptions({ tcache: 'nope' }));
    expect(error.kind).toBe('InvalidParam');
    expect(error.message).toContain('true, false');
    expect(errorOf(() => GlobalAllocator.create({ backend: 'buddy:tcache=nope', heapBytes: 4 * MiB })).kind).toBe('InvalidParam');
    const heap = GlobalAllocator.create({ backend: 'buddy:tcache=false', heapBytes: 8 * MiB });
    try {
      heap.free(heap.malloc(100));
      expect(heap.stats().threadCache).toBeNull();
    } finally {
      heap.detach();
    }
  });

  it('is registered by importing the package, so a heap can name it', () => {
    const heap = GlobalAllocator.create({ backend: 'buddy', heapBytes: 8 * MiB });
    expect(heap.backendName).toBe('buddy');
    expect(heap.backendInstance).toBeInstanceOf(BuddyAllocator);
    const address = heap.malloc(100);
    expect(heap.usableSize(address)).toBe(128);
    heap.free(address);
    expect(heap.check().liveBlocks).toBe(0);
    heap.detach();
  });

  it('refuses a state area that is too small or misaligned', () => {
    const small = makeBackendContext({ stateBytes: BUDDY_STATE_BYTES - 4 });
    expect(errorOf(() => buddyBackend.create(small, {})).kind).toBe('InvalidParam');
    const misaligned = { ...makeBackendContext(), stateOffset: 65536 + 4 };
    expect(errorOf(() => buddyBackend.create(misaligned, {})).kind).toBe('InvalidParam');
  });
});

describe('pools', () => {
  it('carves the order map from the pool start and cuts the rest into naturally aligned blocks', () => {
    const buddy = makeBuddy();
    // 8 MiB of 16-byte units: a 512 KiB map, then blocks from 4.5 MiB to 12 MiB.
    expect(freeSnapshot(buddy.blocks)).toEqual(['0x480000:19', '0x500000:20', '0x600000:21', '0x800000:22']);
    expect(buddy.totalBytes()).toBe(8 * MiB - 512 * KiB);
    expect(buddy.stats()).toEqual({
      totalBytes: 8 * MiB - 512 * KiB,
      usedBytes: 0,
      peakUsedBytes: 0,
      peakUsedSampled: false,
      requestedBytes: 0,
      grantedBytes: 0,
      metadataBytes: 512 * KiB,
      largestFreeBlock: 4 * MiB,
      liveBlocks: 0,
      freeBlocks: 4,
    });
    expect(buddy.check()).toEqual({ blocks: 4, liveBlocks: 0, freeBlocks: 4, usedBytes: 0, freeBytes: 8 * MiB - 512 * KiB, pools: 1 });
  });

  it('rounds an unaligned, odd-sized range inwards to 16 bytes', () => {
    const buddy = makeBuddy(8 * MiB, ARENA_START + 3, 1000);
    // [start + 16, start + 992): 61 units, a 61-byte map padded to 64, blocks from +80.
    expect(freeSnapshot(buddy.blocks)).toEqual([
      '0x400050:4',
      '0x400060:5',
      '0x400080:7',
      '0x400100:8',
      '0x400200:8',
      '0x400300:7',
      '0x400380:6',
      '0x4003c0:5',
    ]);
    expect(buddy.totalBytes()).toBe(992 - 80);
    expect(buddy.stats().metadataBytes).toBe(64);
    buddy.check();
  });

  it('cuts any range into maximal aligned blocks that tile it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 * MiB }), fc.integer({ min: 48, max: 5 * MiB }), (offset, size) => {
        const buddy = makeBuddy(8 * MiB, ARENA_START + offset, size);
        const walked = expectBuddyInvariants(buddy.blocks);
        const blocksStart = buddy.blocks.pools.blocksStart(0);
        const end = buddy.blocks.pools.end(0);
        expect(walked.reduce((sum, block) => sum + 2 ** block.order, 0)).toBe(end - blocksStart);
        expect(buddy.totalBytes()).toBe(end - blocksStart);
        // Maximal: no block could have been twice as large where it stands.
        for (const block of walked) {
          const doubled = 2 ** (block.order + 1);
          expect(block.address % doubled !== 0 || block.address + doubled > end).toBe(true);
        }
        buddy.check();
      }),
      { numRuns: 60, seed: 0xb0d1 },
    );
  });

  it('refuses ranges too small for a map and a block, or outside the arena', () => {
    // Driven directly, without core's checks in front, so the refusals are the backend's own.
    const context = makeBackendContext({ arenaBytes: 8 * MiB, stateBytes: BUDDY_STATE_BYTES });
    const buddy = new BuddyAllocator(context);
    expect(errorOf(() => buddy.init(ARENA_START, 31)).kind).toBe('InvalidParam');
    expect(errorOf(() => buddy.init(ARENA_START + 1, 32)).kind).toBe('InvalidParam');
    expect(errorOf(() => buddy.init(ARENA_START - 16, 1024)).kind).toBe('InvalidParam');
    expect(errorOf(() => buddy.init(12 * MiB - 512, 1024)).kind).toBe('InvalidParam');
    expect(errorOf(() => buddy.addMemory(ARENA_START, 1 * MiB)).message).toContain('call init first');
    buddy.init(ARENA_START, 32);
    recordPool(context.memory, ARENA_START, 32);
    expect(freeSnapshot(buddy.blocks)).toEqual(['0x400010:4']);
    expect(buddy.allocate(16, 8)).toBe(ARENA_START + 16);
    expect(buddy.allocate(0, 8)).toBe(0);
    buddy.check();
  });

  it('adds pools anywhere, each with its own map, and gives every block back', () => {
    const fixture = makeFixture(8 * MiB, ARENA_START, 1 * MiB);
    const buddy = fixture.backend;
    fixture.addMemory(ARENA_START + 1 * MiB, 1 * MiB);
    fixture.addMemory(ARENA_START + 3 * MiB + 8, 2 * MiB - 100);
    expect(buddy.blocks.pools.count()).toBe(3);
    expect(buddy.blocks.pools.mapStart(2)).toBe(ARENA_START + 3 * MiB + 16);
    expect(buddy.blocks.pools.end(2)).toBe(ARENA_START + 5 * MiB - 96);
    const initial = freeSnapshot(buddy.blocks);
    const first = buddy.stats();
    expect(first.totalBytes).toBe(2 * (1 * MiB - 64 * KiB) + (buddy.blocks.pools.end(2) - buddy.blocks.pools.blocksStart(2)));
    expect(first.metadataBytes).toBe(2 * 64 * KiB + (buddy.blocks.pools.blocksStart(2) - buddy.blocks.pools.mapStart(2)));
    const live: number[] = [];
    for (let address = buddy.allocate(4096, 8); address !== 0; address = buddy.allocate(4096, 8)) live.push(address);
    expect(new Set(live.map((address) => buddy.blocks.pools.find(address)))).toEqual(new Set([0, 1, 2]));
    expect(buddy.stats().largestFreeBlock).toBeLessThan(4096);
    expectBuddyInvariants(buddy.blocks);
    for (const address of live) buddy.release(address);
    expect(freeSnapshot(buddy.blocks)).toEqual(initial);
    expect(buddy.stats()).toEqual({ ...first, peakUsedBytes: live.length * 4096 });
    buddy.check();
  });

  it('takes more memory through GlobalAllocator.addMemory', () => {
    const heap = GlobalAllocator.create({ backend: 'buddy', heapBytes: 16 * MiB, initBytes: 4 * MiB });
    expect(heap.totalBytes()).toBe(4 * MiB - 256 * KiB);
    expect(heap.malloc(4 * MiB)).toBe(0);
    heap.addMemory(heap.arenaStart + 4 * MiB, 12 * MiB);
    expect(heap.totalBytes()).toBe(4 * MiB - 256 * KiB + 12 * MiB - 768 * KiB);
    const big = heap.malloc(4 * MiB);
    expect([12 * MiB, 16 * MiB]).toContain(big);
    expectAllocError(() => heap.addMemory(heap.arenaStart + 2 * MiB, 4 * MiB), 'MemoryOverlap');
    heap.free(big);
    expect(heap.check()).toMatchObject({ pools: 2, liveBlocks: 0 });
    heap.detach();
  });

  it('handles addresses at and above 2^31', () => {
    const fixture = makeFixture(2 * GiB + 8 * MiB, ARENA_START, 64 * KiB);
    const buddy = fixture.backend;
    const high = 2 * GiB + 4 * MiB;
    fixture.addMemory(high, 4 * MiB);
    // Take the low pool's blocks (4, 8, 16 and 32 KiB), so every later block comes from the high one.
    const hold = [32, 16, 8, 4].map((kib) => buddy.allocate(kib * KiB, 8));
    expect(hold.every((address) => address > 0 && address < ARENA_START + 64 * KiB)).toBe(true);
    const live: number[] = [];
    for (let i = 0; i < 2000; i++) live.push(buddy.allocate(1 + (i % 700), 8));
    expect(live.every((address) => address >= high)).toBe(true);
    expect(live.every((address) => address >>> 0 === address)).toBe(true);
    expectBuddyInvariants(buddy.blocks);
    const random = new Random(31);
    while (live.length > 0) {
      const index = random.int(0, live.length);
      buddy.release(live[index]!);
      live[index] = live[live.length - 1]!;
      live.pop();
    }
    for (const address of hold) buddy.release(address);
    expect(buddy.usedBytes()).toBe(0);
    expect(freeSnapshot(buddy.blocks).filter((block) => block.startsWith('0x8'))).toEqual(['0x80440000:18', '0x80480000:19', '0x80500000:20', '0x80600000:21']);
    buddy.check();
  });
});

describe('sizes, orders and alignment', () => {
  it('rounds sizes up to a power of two from 16 bytes and keeps the size asked for', () => {
    const buddy = makeBuddy();
    const cases: [number, number][] = [
      [0, 16],
      [1, 16],
      [16, 16],
      [17, 32],
      [100, 128],
      [1000, 1024],
      [1024, 1024],
      [1025, 2048],
      [65537, 131072],
      [3 * MiB, 4 * MiB],
    ];
    let requested = 0;
    let used = 0;
    for (const [size, usable] of cases) {
      const address = buddy.allocate(size, 8);
      expect(address % usable, `a ${usable}-byte block is aligned to its size`).toBe(0);
      expect(buddy.usableSize(address)).toBe(usable);
      expect(buddy.requestedSize(address)).toBe(size);
      requested += size;
      used += usable;
    }
    const stats = buddy.stats();
    expect(stats.requestedBytes).toBe(requested);
    expect(stats.usedBytes).toBe(used);
    expect(stats.grantedBytes).toBe(used);
    expect(stats.liveBlocks).toBe(cases.length);
    expectBuddyInvariants(buddy.blocks);
    buddy.check();
  });

  it('serves an alignment up to the block size at no cost, and a larger one by raising the order', () => {
    const buddy = makeBuddy();
    const same = buddy.allocate(1024, 1024);
    expect(buddy.usableSize(same)).toBe(1024);
    const raised = buddy.allocate(10, 64 * KiB);
    expect(raised % (64 * KiB)).toBe(0);
    expect(buddy.usableSize(raised)).toBe(64 * KiB);
    expect(buddy.requestedSize(raised)).toBe(10);
    const huge = buddy.allocate(8, 4 * MiB);
    expect(huge).toBe(8 * MiB);
    expect(buddy.allocate(8, 8 * MiB)).toBe(0);
    expect(buddy.allocate(8, 2 * GiB)).toBe(0);
    buddy.check();
  });

  it('returns 0 for sizes beyond any block and changes nothing', () => {
    const buddy = makeBuddy();
    const before = freeSnapshot(buddy.blocks);
    for (const size of [4 * MiB + 1, 1 * GiB, 1 * GiB + 1, 2 ** 32, 2 ** 32 + 16, Number.MAX_SAFE_INTEGER]) {
      expect(buddy.allocate(size, 8), `allocate(${size})`).toBe(0);
    }
    expect(freeSnapshot(buddy.blocks)).toEqual(before);
    expect(buddy.stats().usedBytes).toBe(0);
  });

  it('splits the smallest free block that fits and merges every half back on free', () => {
    const buddy = makeBuddy();
    const initial = freeSnapshot(buddy.blocks);
    const address = buddy.allocate(0, 8);
    // From the 512 KiB block at 4.5 MiB: one free half of each order 4..18 above the block.
    expect(address).toBe(0x480000);
    const halves = walkBlocks(buddy.blocks)
      .filter((block) => block.kind === 'free' && block.address < 0x500000)
      .map((block) => `${hex(block.address)}:${block.order}`);
    expect(halves).toEqual(Array.from({ length: 15 }, (_, i) => `${hex(0x480000 + 2 ** (i + 4))}:${i + 4}`));
    buddy.release(address);
    expect(freeSnapshot(buddy.blocks)).toEqual(initial);
    buddy.check();
  });

  it('frees 25,000 64-byte blocks in random order back to the initial blocks (the ArceOS workload)', () => {
    const buddy = makeBuddy();
    const initial = freeSnapshot(buddy.blocks);
    const live = Array.from({ length: 25_000 }, () => buddy.allocate(64, 8));
    expect(new Set(live).size).toBe(25_000);
    expect(buddy.stats().usedBytes).toBe(25_000 * 64);
    const random = new Random(0xa5c05);
    for (let i = live.length - 1; i > 0; i--) {
      const j = random.int(0, i + 1);
      [live[i], live[j]] = [live[j]!, live[i]!];
    }
    for (let i = 0; i < live.length; i++) {
      buddy.release(live[i]!);
      if (i === 12_345) expectBuddyInvariants(buddy.blocks);
    }
    expect(freeSnapshot(buddy.blocks)).toEqual(initial);
    expect(buddy.stats()).toMatchObject({ usedBytes: 0, requestedBytes: 0, liveBlocks: 0, peakUsedBytes: 25_000 * 64 });
    buddy.check();
  });

  it('holds 7,500 blocks of 520 bytes in 1 KiB blocks and gives all back', () => {
    const buddy = makeBuddy(16 * MiB);
    const initial = freeSnapshot(buddy.blocks);
    const live = Array.from({ length: 7_500 }, () => buddy.allocate(520, 8));
    expect(live.includes(0)).toBe(false);
    expect(buddy.stats()).toMatchObject({ usedBytes: 7_500 * 1024, requestedBytes: 7_500 * 520 });
    for (let i = 0; i < live.length; i += 2) buddy.release(live[i]!);
    for (let i = 1; i < live.length; i += 2) buddy.release(live[i]!);
    expect(freeSnapshot(buddy.blocks)).toEqual(initial);
    buddy.check();
  });
});

describe('bad addresses', () => {
  it('refuses double frees, interior pointers, free memory, the map and memory outside every pool', () => {
    const buddy = makeBuddy(8 * MiB, ARENA_START, 4 * MiB);
    const small = buddy.allocate(16, 8);
    const block = buddy.allocate(300, 8);
    const other = buddy.allocate(5000, 8);
    expect(buddy.usableSize(block)).toBe(512);
    for (const offset of [8, 16, 32, 256, 496]) expectRefused(buddy, block + offset);
    expectRefused(buddy, small + 8);
    buddy.release(other);
    expectRefused(buddy, other); // double free
    expectRefused(buddy, other + 4096); // inside a free block
    expectRefused(buddy, ARENA_START); // the order map's own first unit
    expectRefused(buddy, ARENA_START + 64 * KiB); // inside the order map
    expectRefused(buddy, 10 * MiB); // arena memory given to no pool
    expectRefused(buddy, 3); // no address a facade would pass, still refused
    buddy.release(block);
    buddy.release(small);
    expect(buddy.stats().liveBlocks).toBe(0);
    buddy.check();
  });
});

describe('merging at the edges of a pool', () => {
  it('never takes user bytes past the order map for the entry of a buddy beyond the pool end', () => {
    const buddy = makeBuddy();
    // The last block, [8 MiB, 12 MiB), has its would-be buddy at 12 MiB, past the pool. The
    // entry index of 12 MiB is the first byte after the map: the first byte of the blocks.
    const last = buddy.allocate(4 * MiB, 8);
    expect(last).toBe(8 * MiB);
    const first = buddy.allocate(512 * KiB, 8);
    expect(first).toBe(ARENA_START + 512 * KiB);
    buddy.blocks.u8[first] = 0x80 | 22; // user data that reads as "free, order 22"
    buddy.release(last);
    expect(freeSnapshot(buddy.blocks)).toContain('0x800000:22');
    buddy.release(first);
    buddy.check();
  });
});

describe('resizeInPlace', () => {
  it('shrinks by freeing upper halves and keeps the address', () => {
    const buddy = makeBuddy();
    const address = buddy.allocate(4000, 8);
    const neighbour = buddy.allocate(4096, 8);
    expect(buddy.resizeInPlace(address, 100)).toBe(true);
    expect(buddy.usableSize(address)).toBe(128);
    expect(buddy.requestedSize(address)).toBe(100);
    const free = freeSnapshot(buddy.blocks);
    for (let order = 7; order < 12; order++) expect(free).toContain(`${hex(address + 2 ** order)}:${order}`);
    expect(buddy.resizeInPlace(address, 17)).toBe(true);
    expect(buddy.usableSize(address)).toBe(32);
    expect(buddy.stats()).toMatchObject({ usedBytes: 32 + 4096, requestedBytes: 17 + 4096 });
    expectBuddyInvariants(buddy.blocks);
    buddy.release(neighbour);
    buddy.check();
  });

  it('grows into free buddies above, and refuses when one is live or the block is misaligned', () => {
    const buddy = makeBuddy();
    const low = buddy.allocate(64, 8);
    expect(buddy.resizeInPlace(low, 1000)).toBe(true);
    expect(buddy.usableSize(low)).toBe(1024);
    expect(buddy.requestedSize(low)).toBe(1000);
    const blocker = buddy.allocate(1024, 8);
    expect(blocker).toBe(low + 1024);
    const before = { stats: buddy.stats(), free: freeSnapshot(buddy.blocks) };
    expect(buddy.resizeInPlace(low, 2000)).toBe(false);
    // `blocker` is aligned to 1 KiB only: it cannot become a 2 KiB block where it stands.
    expect(buddy.resizeInPlace(blocker, 2000)).toBe(false);
    expect(buddy.resizeInPlace(low, 2 * GiB)).toBe(false);
    expect(buddy.resizeInPlace(low, 8 * MiB)).toBe(false);
    expect(buddy.stats()).toEqual(before.stats);
    expect(freeSnapshot(buddy.blocks)).toEqual(before.free);
    buddy.release(blocker);
    expect(buddy.resizeInPlace(low, 200_000)).toBe(true);
    expect(buddy.usableSize(low)).toBe(256 * KiB);
    expect(buddy.stats()).toMatchObject({ usedBytes: 256 * KiB, requestedBytes: 200_000, liveBlocks: 1 });
    expectBuddyInvariants(buddy.blocks);
    buddy.release(low);
    expect(freeSnapshot(buddy.blocks)).toEqual(['0x480000:19', '0x500000:20', '0x600000:21', '0x800000:22']);
    buddy.check();
  });

  it('does not grow an upper half, even into a free block of its own order', () => {
    const buddy = makeBuddy();
    const [a, b, c, d] = [0, 1, 2, 3].map(() => buddy.allocate(1024, 8)) as [number, number, number, number];
    expect([b - a, c - a, d - a]).toEqual([1024, 2048, 3072]);
    buddy.release(c); // free, order 10, right above b; its buddy d is live
    expect(freeSnapshot(buddy.blocks)).toContain(`${hex(c)}:10`);
    expect(buddy.resizeInPlace(b, 2000)).toBe(false);
    expect(buddy.usableSize(b)).toBe(1024);
    expectBuddyInvariants(buddy.blocks);
    for (const address of [a, b, d]) buddy.release(address);
    buddy.check();
  });
});

describe('check()', () => {
  /** A heap with some live and free blocks, and the error `damage` makes `check()` raise. */
  const damaged = (damage: (buddy: BuddyAllocator, live: number[]) => void): string => {
    const buddy = makeBuddy();
    const live = [100, 3000, 40, 70_000, 16].map((size) => buddy.allocate(size, 8));
    buddy.release(live[2]!);
    buddy.check();
    damage(buddy, live);
    const error = errorOf(() => buddy.check());
    expect(error.kind).toBe('HeapCorrupted');
    return error.message;
  };
  /** The order-map entry of `address` in the one pool, whose map starts at the arena start. */
  const entryOf = (address: number): number => ARENA_START + (address - ARENA_START) / 16;

  it('finds a START bit inside a block', () => {
    expect(
      damaged((buddy, live) => {
        buddy.blocks.u8[entryOf(live[1]!) + 3] = 0x80 | 4;
      }),
    ).toContain('inside the block');
  });

  it('finds two free buddies left unmerged', () => {
    expect(
      damaged((buddy, live) => {
        // Mark the 16-byte block's buddy (free, order 4) as a free block too: a missed merge.
        const address = live[4]!;
        buddy.blocks.u8[entryOf(address)] = 0x80 | 4;
        buddy.blocks.u32[(address + FB_MAP_START) >>> 2] = ARENA_START;
      }),
    ).toContain('missed merge');
  });

  it('finds a broken back link', () => {
    expect(
      damaged((buddy) => {
        const head = buddy.blocks.lists.head(19) || buddy.blocks.lists.head(20);
        buddy.blocks.u32[(head + FB_PREV) >>> 2] = 0x480000;
      }),
    ).toMatch(/previous link|not a free block/);
  });

  it('finds counters that disagree with the walk', () => {
    const state = (buddy: BuddyAllocator, field: number): number => (buddy.blocks.stateOffset + field) >>> 2;
    // Core's counters, moved through their own API: each one off by a little.
    expect(damaged((buddy) => buddy.blocks.counters.resized(16, 0, 0))).toContain('usedBytes');
    expect(damaged((buddy) => buddy.blocks.counters.resized(0, -1, 0))).toContain('requestedBytes');
    expect(damaged((buddy) => buddy.blocks.counters.resized(0, 0, 16))).toContain('grantedBytes');
    expect(damaged((buddy) => buddy.blocks.counters.addMemory(16, 0))).toContain('totalBytes');
    expect(damaged((buddy) => buddy.blocks.counters.addMemory(0, 16))).toContain('metadataBytes');
    expect(damaged((buddy) => buddy.blocks.counters.allocated(0, 0, 0))).toContain('liveBlocks');
    expect(
      damaged((buddy) => {
        buddy.blocks.u32[state(buddy, ST_LENGTHS) + 22]! += 1;
      }),
    ).toContain('records length');
    expect(
      damaged((buddy) => {
        buddy.blocks.u32[state(buddy, ST_NON_EMPTY)] = 0;
      }),
    ).toContain('non-empty mask');
  });

  it("finds size and alignment digits that do not call for the block's order", () => {
    // live[0] asked for 100 bytes aligned to 8: order 7, slack 28 in digits 1 and 2, and the
    // alignment digit (log2 8 - 3 = 0) after them.
    expect(
      damaged((buddy, live) => {
        buddy.blocks.u8[entryOf(live[0]!) + 1] = 100; // slack 100: 28 bytes asked for call for order 5
      }),
    ).toContain('digits');
    expect(
      damaged((buddy, live) => {
        buddy.blocks.u8[entryOf(live[0]!) + 3] = 5; // aligned to 256, more than the 128-byte block
      }),
    ).toContain('digits');
  });

  it('finds a free block missing from its list', () => {
    expect(
      damaged((buddy, live) => {
        // Free a block in the map only: the walk finds a free block that no list holds.
        buddy.blocks.u8[entryOf(live[0]!)] = 0x80 | 7;
        buddy.blocks.u32[(live[0]! + FB_MAP_START) >>> 2] = ARENA_START;
      }),
    ).toContain('free list 7 holds 0 blocks but the pools hold 1');
  });
});

describe('model-based sequences', () => {
  type Op = { kind: 'alloc'; size: number; alignLog: number } | { kind: 'free'; pick: number } | { kind: 'resize'; pick: number; size: number };

  it('keeps the buddy invariants and exact counters through random sequences, and merges back to the start', () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('alloc' as const), size: fc.oneof(fc.nat(64), fc.nat(5000), fc.nat(300_000)), alignLog: fc.integer({ min: 3, max: 16 }) }),
      fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('resize' as const), pick: fc.nat(), size: fc.nat(20_000) }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 80 }), (ops) => {
        const buddy = makeBuddy(8 * MiB, ARENA_START + 48, 2 * MiB - 48);
        const initial = freeSnapshot(buddy.blocks);
        const model = new Map<number, number>(); // address -> requested size
        for (const step of ops) {
          const live = [...model.keys()];
          if (step.kind === 'alloc') {
            const address = buddy.allocate(step.size, 2 ** step.alignLog);
            if (address === 0) continue;
            expect(address % 2 ** step.alignLog).toBe(0);
            expect(model.has(address)).toBe(false);
            model.set(address, step.size);
          } else if (live.length > 0) {
            const address = live[step.pick % live.length]!;
            if (step.kind === 'free') {
              buddy.release(address);
              model.delete(address);
            } else if (buddy.resizeInPlace(address, step.size)) {
              model.set(address, step.size);
            }
          }
          const walked = expectBuddyInvariants(buddy.blocks);
          const liveBlocks = walked.filter((block) => block.kind === 'live');
          expect(liveBlocks.map((block) => block.address).sort((a, b) => a - b)).toEqual([...model.keys()].sort((a, b) => a - b));
          let used = 0;
          let requested = 0;
          for (const block of liveBlocks) {
            const size = model.get(block.address)!;
            expect(2 ** block.order).toBeGreaterThanOrEqual(size);
            expect(buddy.requestedSize(block.address)).toBe(size);
            used += 2 ** block.order;
            requested += size;
          }
          expect(buddy.stats()).toMatchObject({ usedBytes: used, grantedBytes: used, requestedBytes: requested, liveBlocks: model.size });
          const largest = buddy.stats().largestFreeBlock;
          expect(walked.some((block) => block.kind === 'free' && 2 ** block.order === largest) || largest === 0).toBe(true);
          buddy.check();
        }
        for (const address of model.keys()) buddy.release(address);
        expect(freeSnapshot(buddy.blocks)).toEqual(initial);
        expect(walkBlocks(buddy.blocks).every((block) => block.kind === 'free')).toBe(true);
      }),
      { numRuns: 60, seed: 0xb0dd1e },
    );
  });
});

describe('dealloc layouts (blockLayout)', () => {
  /** Without the thread cache by default: these tests are about the exact sizes buddy records. */
  const makeHeap = (tcache = false): GlobalAllocator => GlobalAllocator.create({ backend: buddyBackend, options: { tcache }, heapBytes: 8 * MiB });

  /** The block size a request gets: its size's and its alignment's orders, 32 bytes for 0 or 1 byte aligned to 16. */
  const blockBytes = (size: number, align: number): number => {
    let bytes = 16;
    while (bytes < size) bytes *= 2;
    if (align > bytes) bytes = align;
    return align === 16 && size < 2 ? 32 : bytes;
  };

  it('records every size and alignment exactly, and frees each block with exactly its layout', () => {
    const heap = makeHeap();
    const buddy = heap.backendOf(buddyBackend);
    const held: { address: number; size: number; align: number }[] = [];
    for (const size of [0, 1, 2, 14, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 4096, 5000, 65_537]) {
      for (let alignLog = 0; alignLog <= 16; alignLog++) {
        const align = 2 ** alignLog;
        const address = heap.alignedAlloc(align, size);
        expect(address % align).toBe(0);
        const recorded = Math.max(align, 8);
        expect(buddy.blockLayout(address), `size ${size} align ${align}`).toEqual({ minSize: size, maxSize: size, minAlign: recorded, maxAlign: recorded });
        expect(heap.usableSize(address), `size ${size} align ${align}`).toBe(blockBytes(size, recorded));
        held.push({ address, size, align });
      }
      heap.check();
    }
    for (const { address, size, align } of held) heap.dealloc(address, { size, align });
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it("refuses a wrong size, an alignment other than the allocation's and size 0, leaving the block live", () => {
    const heap = makeHeap();
    const address = heap.alloc({ size: 100, align: 8 });
    expect(address % 128).toBe(0);
    // 16 and 128 are alignments the address has, but not the one it was allocated with.
    for (const layout of [
      { size: 99, align: 8 },
      { size: 101, align: 8 },
      { size: 128, align: 8 },
      { size: 0, align: 8 },
      { size: 100, align: 16 },
      { size: 100, align: 128 },
    ]) {
      expectAllocError(() => heap.dealloc(address, layout), 'InvalidParam');
    }
    expect(heap.usableSize(address)).toBe(128);
    heap.dealloc(address, { size: 100, align: 1 }); // raised to 8, as allocation raises it
    const aligned = heap.alloc({ size: 100, align: 64 });
    expectAllocError(() => heap.dealloc(aligned, { size: 100, align: 8 }), 'InvalidParam');
    expectAllocError(() => heap.dealloc(aligned, { size: 100, align: 128 }), 'InvalidParam');
    heap.dealloc(aligned, { size: 100, align: 64 });
    const tiny = heap.alloc({ size: 10, align: 16 });
    expect(heap.usableSize(tiny)).toBe(16);
    expectAllocError(() => heap.dealloc(tiny, { size: 10, align: 8 }), 'InvalidParam');
    heap.dealloc(tiny, { size: 10, align: 16 });
    const empty = heap.alloc({ size: 0, align: 8 });
    expectAllocError(() => heap.dealloc(empty, { size: 1, align: 8 }), 'InvalidParam');
    heap.dealloc(empty, { size: 0, align: 8 });
    const sixteen = heap.alloc({ size: 16, align: 8 });
    expectAllocError(() => heap.dealloc(sixteen, { size: 0, align: 8 }), 'InvalidParam');
    heap.dealloc(sixteen, { size: 16, align: 8 });
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it("with the thread cache, takes any size of a small block's 8-byte class and refuses the rest", () => {
    const heap = makeHeap(true);
    // 100 bytes is cache class 13: asked of buddy as 104 bytes, it serves 97 to 104.
    const address = heap.alloc({ size: 100, align: 8 });
    for (const layout of [
      { size: 96, align: 8 },
      { size: 105, align: 8 },
      { size: 128, align: 8 },
      { size: 0, align: 8 },
      { size: 100, align: 16 },
    ]) {
      expectAllocError(() => heap.dealloc(address, layout), 'InvalidParam');
    }
    heap.dealloc(address, { size: 97, align: 8 });
    heap.dealloc(heap.alloc({ size: 100, align: 8 }), { size: 104, align: 4 });
    // An over-aligned block does not go through the cache: its size is exact.
    const aligned = heap.alloc({ size: 104, align: 64 });
    expectAllocError(() => heap.dealloc(aligned, { size: 100, align: 64 }), 'InvalidParam');
    heap.dealloc(aligned, { size: 104, align: 64 });
    expect(heap.usedBytes()).toBe(0);
    heap.check();
    heap.detach();
  });

  it('refuses deallocPages with another page count than allocPages gave', () => {
    const heap = makeHeap();
    const pages = heap.allocPages(2);
    expectAllocError(() => heap.deallocPages(pages, 1), 'InvalidParam');
    expectAllocError(() => heap.deallocPages(pages, 3), 'InvalidParam');
    heap.deallocPages(pages, 2);
    expect(heap.usedBytes()).toBe(0);
    heap.detach();
  });

  it('keeps the alignment through realloc in place: an over-aligned block shrinks only to its alignment', () => {
    const heap = makeHeap();
    const address = heap.alignedAlloc(64, 100);
    expect(heap.realloc(address, 40)).toBe(address);
    expect(heap.usableSize(address)).toBe(64);
    expect(heap.realloc(address, 1000)).toBe(address);
    expectAllocError(() => heap.dealloc(address, { size: 1000, align: 8 }), 'InvalidParam');
    heap.dealloc(address, { size: 1000, align: 64 });
    const page = heap.alignedAlloc(4096, 3000);
    expect(heap.realloc(page, 10)).toBe(page);
    expect(heap.usableSize(page)).toBe(4096);
    heap.dealloc(page, { size: 10, align: 4096 });
    const small = heap.alignedAlloc(16, 100);
    expect(heap.realloc(small, 1)).toBe(small);
    expect(heap.usableSize(small)).toBe(32);
    heap.dealloc(small, { size: 1, align: 16 });
    heap.check();
    heap.detach();
  });
});
