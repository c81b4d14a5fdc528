import { GlobalAllocator } from '@heaplab/core';
import { describe, expect, it } from 'vitest';

import { listOf, tlsfBackend } from '../src/index.js';
import { B_NEXT_FREE, B_PREV_PHYS, B_SIZE, ST_FL_BITMAP, ST_LIST_HEADS, ST_SL_BITMAPS, SL_COUNT, USED } from '../src/layout.js';
import { errorOf, expectCorrupted, expectNotAllocated, type Fixture, makeTlsf, MiB } from './fixture.js';

const ARENA = 4 * MiB;

/** A heap with four live blocks full of known bytes, and a check that nothing changed. */
function setUp(poolBytes = 1 * MiB): Fixture & { blocks: number[]; intact: () => void } {
  const fixture = makeTlsf(8 * MiB, poolBytes);
  const { tlsf, memory } = fixture;
  const sizes = [24, 256, 1000, 5000];
  const blocks = sizes.map((size, i) => {
    const address = tlsf.allocate(size, 8);
    memory.u8.fill(0x11 * (i + 1), address, address + size);
    return address;
  });
  const report = tlsf.check();
  const intact = (): void => {
    blocks.forEach((address, i) => {
      if (address === 0) return;
      const bytes = memory.u8.subarray(address, address + sizes[i]!);
      expect(
        bytes.every((byte) => byte === 0x11 * (i + 1)),
        `block ${i} keeps its bytes`,
      ).toBe(true);
    });
    expect(tlsf.check()).toEqual(report);
    fixture.walk.expectInvariants();
  };
  return { ...fixture, blocks, intact };
}

/** Expects every call that takes an address to refuse `address`. */
function expectRefusedEverywhere(fixture: Fixture, address: number): void {
  expectNotAllocated(() => fixture.tlsf.release(address), address);
  expectNotAllocated(() => fixture.tlsf.usableSize(address), address);
  expectNotAllocated(() => fixture.tlsf.requestedSize(address), address);
  expectNotAllocated(() => fixture.tlsf.resizeInPlace(address, 8), address);
}

describe('bad addresses are refused and leave the heap intact', () => {
  it('refuses interior pointers', () => {
    const fixture = setUp();
    const [, b, , d] = fixture.blocks;
    for (const offset of [8, 16, 24, 64, 128, 248]) expectRefusedEverywhere(fixture, b! + offset);
    for (const offset of [8, 504, 4096, 4992]) expectRefusedEverywhere(fixture, d! + offset);
    fixture.intact();
  });

  it('refuses a double free, also once the block has merged with a free neighbour', () => {
    const fixture = setUp();
    const { tlsf, blocks } = fixture;
    tlsf.release(blocks[2]!);
    expectRefusedEverywhere(fixture, blocks[2]!);
    tlsf.release(blocks[1]!); // merges with the free block after it
    expectRefusedEverywhere(fixture, blocks[1]!);
    tlsf.release(blocks[0]!); // merges into... nothing before it, but with the free run after
    expectRefusedEverywhere(fixture, blocks[0]!);
    blocks[0] = blocks[1] = blocks[2] = 0;
    expect(tlsf.check()).toMatchObject({ liveBlocks: 1, freeBlocks: 2 });
    // The stale headers inside the merged block stay refused after it is handed out again.
    const again = tlsf.allocate(1200, 8);
    expect(again).toBe(ARENA + 16);
    for (const stale of [ARENA + 16 + 32, ARENA + 16 + 32 + 264]) expectRefusedEverywhere(fixture, stale);
  });

  it('leaves no USED bit in a header that a merge swallows', () => {
    const fixture = setUp();
    const { tlsf, memory, blocks } = fixture;
    tlsf.release(blocks[0]!);
    tlsf.release(blocks[1]!); // merges into the free block before it
    const swallowed = blocks[1]! - 8;
    expect(memory.u32[(swallowed + B_SIZE) >>> 2]! & USED).toBe(0);
    // Even if the next block pointed back at it, the header would not pass for a live block.
    const next = swallowed + 264;
    const saved = memory.u32[(next + B_PREV_PHYS) >>> 2]!;
    memory.u32[(next + B_PREV_PHYS) >>> 2] = swallowed;
    expectRefusedEverywhere(fixture, blocks[1]!);
    memory.u32[(next + B_PREV_PHYS) >>> 2] = saved;
    tlsf.check();
  });

  it('refuses addresses inside free memory, links included', () => {
    const fixture = setUp();
    const tail = fixture.walk.blocks().at(-1)!;
    expect(tail.free).toBe(true);
    for (const offset of [8, 16, 24, 32, 4096, tail.size - 8]) expectRefusedEverywhere(fixture, tail.address + offset);
    fixture.intact();
  });

  it('refuses the sentinels and addresses no pool covers', () => {
    const fixture = setUp(1 * MiB);
    const poolEnd = ARENA + 1 * MiB;
    for (const address of [ARENA, ARENA + 8, poolEnd - 8, poolEnd, poolEnd + 8, ARENA + 4 * MiB, ARENA + 8 * MiB, ARENA + 8 * MiB - 8]) {
      expectRefusedEverywhere(fixture, address);
    }
    fixture.intact();
  });

  it('refuses what the facade would refuse too: 0, misaligned, fractional, huge or negative', () => {
    const fixture = setUp();
    for (const address of [0, fixture.blocks[1]! + 4, fixture.blocks[1]! + 1, 2 ** 40, -8, 1.5, Number.NaN, 8]) {
      expect(() => fixture.tlsf.release(address)).toThrow(/not the start of a live block/);
      expect(() => fixture.tlsf.usableSize(address)).toThrow(/not the start of a live block/);
    }
    fixture.intact();
  });

  it('refuses user data that mimics a header unless every neighbour agrees', () => {
    const fixture = setUp();
    const { memory, blocks } = fixture;
    const d = blocks[3]!;
    // A fake 64-byte block at d + 512 after a fake 256-byte block at d + 256.
    const prev = d + 256;
    const fake = d + 512;
    const forge = (edit: (u32: Uint32Array) => void): void => {
      const u32 = memory.u32;
      u32[(prev + B_PREV_PHYS) >>> 2] = d - 8;
      u32[(prev + B_SIZE) >>> 2] = 256 | USED;
      u32[(fake + B_PREV_PHYS) >>> 2] = prev;
      u32[(fake + B_SIZE) >>> 2] = 64 | USED;
      u32[(fake + 64 + B_PREV_PHYS) >>> 2] = fake;
      edit(u32);
      expectRefusedEverywhere(fixture, fake + 8);
    };
    forge((u32) => (u32[(fake + B_SIZE) >>> 2] = 64));
    forge((u32) => (u32[(fake + B_SIZE) >>> 2] = 8 | USED));
    forge((u32) => (u32[(fake + B_SIZE) >>> 2] = 0xffff_fff8 | USED));
    forge((u32) => (u32[(fake + 64 + B_PREV_PHYS) >>> 2] = fake + 8));
    forge((u32) => (u32[(prev + B_SIZE) >>> 2] = 248 | USED));
    forge((u32) => (u32[(fake + B_PREV_PHYS) >>> 2] = fake + 64));
    forge((u32) => (u32[(fake + B_PREV_PHYS) >>> 2] = ARENA - 8));
    forge((u32) => (u32[(fake + B_SIZE) >>> 2] = 64 | USED | 6));
    // Restore the block's own bytes so the heap is exactly as before.
    memory.u8.fill(0x44, d, d + 5000);
    fixture.intact();
  });
});

describe('check() finds corruption', () => {
  /** A heap with free blocks on several lists and live blocks between them. */
  function fragmented(): Fixture & { free: number[] } {
    const fixture = makeTlsf(8 * MiB, 1 * MiB);
    const { tlsf } = fixture;
    const blocks = [64, 64, 64, 64, 900, 64, 3000, 64].map((size) => tlsf.allocate(size, 8));
    for (const i of [0, 2, 4, 6]) tlsf.release(blocks[i]!);
    fixture.walk.expectInvariants();
    return { ...fixture, free: [0, 2, 4, 6].map((i) => blocks[i]! - 8) };
  }

  const state = (fixture: Fixture, offset: number): number => (fixture.ctx.stateOffset + offset) >>> 2;

  it('passes on an intact heap', () => {
    expect(fragmented().tlsf.check()).toMatchObject({ liveBlocks: 4, freeBlocks: 5 });
  });

  it('finds a second-level bit that disagrees with its list, either way', () => {
    const set = fragmented();
    set.memory.u32[state(set, ST_SL_BITMAPS)] |= 1 << 10;
    expectCorrupted(set.tlsf, /second-level bit \(0, 10\) is 1 but the list head is 0x0/);
    const cleared = fragmented();
    expect(listOf(72)).toBe(9);
    cleared.memory.u32[state(cleared, ST_SL_BITMAPS)] ^= (1 << 9) | (1 << 10);
    expectCorrupted(cleared.tlsf, /second-level bit \(0, 9\) is 0 but the list head is 0x4/);
  });

  it('finds a first-level bit that disagrees with its second-level word', () => {
    const fixture = fragmented();
    fixture.memory.u32[state(fixture, ST_FL_BITMAP)] |= 1 << 7;
    expectCorrupted(fixture.tlsf, /first-level bit 7 is 1 but second-level bitmap 7 is 0x0/);
  });

  it('finds a prevPhys link that does not point at the block before', () => {
    const fixture = fragmented();
    const victim = fixture.free[1]! + 72;
    fixture.memory.u32[(victim + B_PREV_PHYS) >>> 2] = fixture.free[0]!;
    expectCorrupted(fixture.tlsf, new RegExp(`block 0x${victim.toString(16)} .*prevPhys .* should be the block before it`));
  });

  it('finds two adjacent free blocks', () => {
    const fixture = fragmented();
    const live = fixture.free[0]! + 72;
    fixture.memory.u32[(live + B_SIZE) >>> 2] = 72;
    expectCorrupted(fixture.tlsf, /free block follows the free block .* \(missed merge\)/);
  });

  it('finds a free block on the wrong list', () => {
    const fixture = fragmented();
    const { memory } = fixture;
    const block = fixture.free[2]!; // 912 bytes, alone on its list
    const list = listOf(912);
    expect(list).toBe(2 * SL_COUNT + 25);
    memory.u32[state(fixture, ST_LIST_HEADS + list * 4)] = 0;
    memory.u32[state(fixture, ST_LIST_HEADS + (list + 1) * 4)] = block;
    memory.u32[state(fixture, ST_SL_BITMAPS + 2 * 4)] ^= (1 << (list % SL_COUNT)) | (1 << ((list + 1) % SL_COUNT));
    expectCorrupted(fixture.tlsf, new RegExp(`entry 0x${block.toString(16)} .* has a size that belongs on list ${list}`));
  });

  it('finds a cycle in a free list', () => {
    const fixture = fragmented();
    const [first, second] = fixture.free;
    // Both 72-byte blocks share a list, the later-freed one first.
    expect(fixture.walk.list(listOf(72))).toEqual([second, first]);
    fixture.memory.u32[(first! + B_NEXT_FREE) >>> 2] = second!;
    expectCorrupted(fixture.tlsf, /is listed twice \(a cycle or a block on two lists\)/);
  });

  it('finds a free block that is on no list', () => {
    const fixture = fragmented();
    const { memory } = fixture;
    const block = fixture.free[2]!;
    memory.u32[state(fixture, ST_LIST_HEADS + listOf(912) * 4)] = 0;
    memory.u32[state(fixture, ST_SL_BITMAPS + 2 * 4)] = 0;
    memory.u32[state(fixture, ST_FL_BITMAP)] &= ~(1 << 2);
    expectCorrupted(fixture.tlsf, new RegExp(`free block 0x${block.toString(16)} is on no free list`));
  });

  it('finds slack bits in a free block, a bad end sentinel and a wrong counter', () => {
    const slack = fragmented();
    slack.memory.u32[(slack.free[1]! + B_SIZE) >>> 2] |= 2;
    expectCorrupted(slack.tlsf, /free block has slack bits/);
    const sentinel = fragmented();
    sentinel.memory.u32[(ARENA + 1 * MiB - 8 + B_SIZE) >>> 2] = 0;
    expectCorrupted(sentinel.tlsf, /end sentinel at 0x4ffff8/);
    const counter = fragmented();
    // 8 more bytes used, with no block to show for them.
    counter.ctx.counters.resized(8, 0, 0);
    expectCorrupted(counter.tlsf, /counter usedBytes is \d+ but the walk found \d+/);
  });

  it('finds a size that runs past the pool', () => {
    const fixture = fragmented();
    fixture.memory.u32[(fixture.free[3]! + B_SIZE) >>> 2] = 2 * MiB;
    expectCorrupted(fixture.tlsf, /runs past the end sentinel/);
  });
});

describe('dealloc checks the layout against what the block records', () => {
  /** With the thread cache (the default) or without: the backend's exact requested sizes. */
  const heapWith = (tcache = true): GlobalAllocator => GlobalAllocator.create({ backend: tlsfBackend, options: { tcache }, heapBytes: 8 * MiB });

  /** Expects `dealloc(address, layout)` to be refused and to leave the heap as it was. */
  const expectRefused = (heap: GlobalAllocator, address: number, layout: { size: number; align: number }): void => {
    const before = heap.check();
    const error = errorOf(() => heap.dealloc(address, layout));
    expect(error.kind, JSON.stringify(layout)).toBe('InvalidParam');
    expect(error.message).toContain('does not match the block');
    expect(heap.check()).toEqual(before);
  };

  it('takes exactly the requested size, and alignment 8 or less for a plain block (no thread cache)', () => {
    const heap = heapWith(false);
    const address = heap.malloc(100);
    // Usable size is 104 (the slack is kept), and the address is 16-aligned here: neither is
    // enough to pass for another layout.
    expect(heap.usableSize(address)).toBe(104);
    expect(address % 16).toBe(0);
    for (const size of [0, 99, 101, 104]) expectRefused(heap, address, { size, align: 8 });
    expectRefused(heap, address, { size: 100, align: 16 });
    for (const align of [1, 2, 4, 8]) {
      const again = align === 1 ? address : heap.malloc(100);
      heap.dealloc(again, { size: 100, align });
    }
    expect(heap.check().liveBlocks).toBe(0);
    heap.detach();
  });

  it("takes any size of a cached block's 8-byte class, and refuses sizes outside it and other alignments", () => {
    const heap = heapWith();
    // 100 bytes is class 13: the block was asked of tlsf as 104 bytes and serves 97 to 104.
    const address = heap.malloc(100);
    expect(heap.usableSize(address)).toBe(104);
    for (const size of [0, 96, 105, 112]) expectRefused(heap, address, { size, align: 8 });
    expectRefused(heap, address, { size: 100, align: 16 });
    for (const size of [97, 100, 104]) {
      const again = size === 97 ? address : heap.malloc(100);
      heap.dealloc(again, { size, align: 8 });
    }
    // Class 1 serves requests of 0 to 8 bytes.
    const tiny = heap.malloc(0);
    expectRefused(heap, tiny, { size: 9, align: 8 });
    heap.dealloc(tiny, { size: 8, align: 1 });
    expect(heap.check().liveBlocks).toBe(0);
    heap.detach();
  });

  it('takes exactly the alignment and size an over-aligned block was allocated with, cache or not', () => {
    // An over-aligned block never passes through the thread cache, so its exact size stands
    // (1000 is a multiple of 8: a cached block of that class would take 993 to 1000).
    for (const tcache of [true, false]) {
      const heap = heapWith(tcache);
      const address = heap.alloc({ size: 1000, align: 256 });
      // 4096-aligned by chance or not, only 256 is right.
      for (const align of [8, 16, 128, 512, 4096]) expectRefused(heap, address, { size: 1000, align });
      for (const size of [0, 993, 999, 1001]) expectRefused(heap, address, { size, align: 256 });
      heap.dealloc(address, { size: 1000, align: 256 });
      expect(heap.check().liveBlocks).toBe(0);
      heap.detach();
    }
  });

  it('refuses deallocPages with another page count', () => {
    const heap = heapWith();
    const pages = heap.allocPages(2);
    expectRefused(heap, pages, { size: 4096, align: 4096 });
    expect(() => heap.deallocPages(pages, 1)).toThrow(/does not match the block/);
    expect(() => heap.deallocPages(pages, 3)).toThrow(/does not match the block/);
    heap.deallocPages(pages, 2);
    expect(heap.check()).toMatchObject({ liveBlocks: 0, freeBlocks: 1 });
    heap.detach();
  });

  it('keeps the recorded alignment through an in-place realloc', () => {
    const heap = heapWith();
    const address = heap.alloc({ size: 300, align: 64 });
    expect(heap.realloc(address, 100, 64)).toBe(address);
    expectRefused(heap, address, { size: 100, align: 8 });
    expect(heap.realloc(address, 2000, 64)).toBe(address);
    heap.dealloc(address, { size: 2000, align: 64 });
    heap.detach();
  });
});
