/**
 * Refill runs of the buddy heap (`allocateRun`, `src/runs.ts`): the test kit's suite, on
 * default settings and in checked mode (where each carve also checks the links it edits), then
 * what buddy's structure adds: a run is one free block cut from its start into blocks of
 * the size's order, the smallest block that holds it (else the largest, for fewer blocks);
 * blocks under a line come in line-fulls; each block is the one `allocate(size, 8)` would
 * make; and after any block the rest of the region is free in maximal aligned blocks, so the
 * heap merges back whole.
 */

import { hex, MiB } from '@heaplab/core';
import { BackendFixture, describeRefillRuns, expectAllocError, expectRunHolds, takeRun } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { type BuddyAllocator, buddyBackend } from '../src/index.js';
import { FB_PREV } from '../src/layout.js';
import { orderFor } from '../src/orders.js';
import { expectBuddyInvariants, freeSnapshot } from './heap-walk.js';

describeRefillRuns({ label: 'buddy', descriptor: buddyBackend });
describeRefillRuns({ label: 'buddy (checked)', descriptor: buddyBackend, checked: true });

/** Where a fresh heap's smallest free block (256 KiB) starts: after the 4 MiB arena's 256 KiB order map. */
const SMALLEST_FREE = 0x440000;

/** A buddy heap over a fresh 4 MiB arena, one pool; its free blocks are 256 KiB, 512 KiB, 1 MiB and 2 MiB. */
function makeBuddy(): BuddyAllocator {
  return new BackendFixture(buddyBackend, {}, { arenaBytes: 4 * MiB }).init().backend;
}

/** The largest aligned blocks that cut `[from, to)`, as `address:order`: what a maximal free remainder is. */
function maximalBlocks(from: number, to: number): string[] {
  const cut: string[] = [];
  for (let at = from; at < to; ) {
    let order = 31 - Math.clz32(at & -at);
    while (at + 2 ** order > to) order--;
    cut.push(`${hex(at)}:${order}`);
    at += 2 ** order;
  }
  return cut;
}

/** The free blocks of `snapshot` (`address:order` strings) that lie in `[from, to)`. */
function freeWithin(snapshot: string[], from: number, to: number): string[] {
  return snapshot.filter((entry) => {
    const address = Number.parseInt(entry.split(':')[0]!, 16);
    return address >= from && address < to;
  });
}

describe('buddy refill runs', () => {
  it('makes each block as allocate(size, 8) does: same order, requested size and layout', () => {
    for (const size of [8, 16, 24, 32, 40, 64, 72, 200, 520, 1024]) {
      const buddy = makeBuddy();
      const single = buddy.allocate(size, 8);
      const expected = { usable: buddy.usableSize(single), requested: buddy.requestedSize(single), layout: buddy.blockLayout(single) };
      buddy.release(single);
      const blocks = takeRun(buddy, size, Math.max(1, (512 / size) | 0));
      for (const block of blocks) {
        expect({ usable: buddy.usableSize(block), requested: buddy.requestedSize(block), layout: buddy.blockLayout(block) }).toEqual(expected);
      }
      // One after another, without gaps: one block of each order cut from the region's start.
      expect(blocks.map((block) => block - blocks[0]!)).toEqual(blocks.map((_, index) => index * expected.usable));
      expect(buddy.stats()).toMatchObject({ liveBlocks: blocks.length, usedBytes: blocks.length * expected.usable, requestedBytes: blocks.length * size });
      expectBuddyInvariants(buddy.blocks);
      buddy.check();
    }
  });

  it('rounds blocks under a line down to whole lines, and makes no run of less than one line-full', () => {
    const buddy = makeBuddy();
    const initial = freeSnapshot(buddy.blocks);
    // 24 bytes take 32-byte blocks, two a line: 21 asked, 20 made, ending on a line.
    const blocks = takeRun(buddy, 24, 21);
    expect(blocks.length).toBe(20);
    expect((blocks[19]! + 32) % 64).toBe(0);
    expectRunHolds(buddy, blocks, 24);
    // Under a line-full (four 16-byte blocks, two 32-byte ones): nothing, and nothing changed.
    const before = { free: freeSnapshot(buddy.blocks), stats: buddy.stats() };
    for (const [size, count] of [
      [8, 3],
      [16, 1],
      [24, 1],
      [32, 1],
    ] as const) {
      expect(buddy.allocateRun(size, count, () => expect.unreachable('no block'))).toBe(0);
    }
    expect({ free: freeSnapshot(buddy.blocks), stats: buddy.stats() }).toEqual(before);
    for (const block of blocks) buddy.release(block);
    expect(freeSnapshot(buddy.blocks)).toEqual(initial);
  });

  it('takes the smallest free block that holds the run and leaves its tail free in maximal blocks', () => {
    const buddy = makeBuddy();
    // 72 bytes take 128-byte blocks: 7 of them are 896 bytes, held by a 1 KiB block. The
    // heap's smallest free block is 256 KiB, so the run splits it down to 1 KiB first.
    const smallest = SMALLEST_FREE;
    expect(freeSnapshot(buddy.blocks)[0]).toBe(`${hex(smallest)}:18`);
    const blocks = takeRun(buddy, 72, 7);
    expect(blocks.length).toBe(7);
    expect(blocks[0]).toBe(smallest);
    const free = freeSnapshot(buddy.blocks);
    expect(freeWithin(free, smallest, smallest + 1024)).toEqual([`${hex(smallest + 896)}:7`]);
    expect(freeWithin(free, smallest + 1024, smallest + 256 * 1024)).toEqual(maximalBlocks(smallest + 1024, smallest + 256 * 1024));
    expectBuddyInvariants(buddy.blocks);
    // A second run of another order takes the 1 KiB block that the first one's split freed.
    const next = takeRun(buddy, 256, 2);
    expect(next[0]).toBe(smallest + 1024);
  });

  it('takes the largest free block when none holds the run, for fewer blocks', () => {
    const buddy = makeBuddy();
    // Fill the heap with 1 KiB blocks, then free two lone 256-byte blocks and one 512-byte one.
    const kilo: number[] = [];
    for (let block = buddy.allocate(1024, 8); block !== 0; block = buddy.allocate(1024, 8)) kilo.push(block);
    buddy.release(kilo[10]!);
    const quarters = [0, 1, 2, 3].map(() => buddy.allocate(256, 8));
    buddy.release(quarters[1]!);
    buddy.release(quarters[3]!);
    buddy.release(kilo[20]!);
    const halves = [buddy.allocate(512, 8), buddy.allocate(512, 8)];
    buddy.release(halves[0]!);
    // 64 blocks of 16 bytes want 1 KiB; the largest free block is 512 bytes: 32 blocks there.
    const blocks = takeRun(buddy, 16, 64);
    expect(blocks.length).toBe(32);
    expect(blocks[0]).toBe(halves[0]);
    expectRunHolds(buddy, blocks, 16);
    // Nothing of a line or more left but the 256-byte blocks: 16 blocks of 16 bytes each.
    expect(takeRun(buddy, 16, 64).length).toBe(16);
    expect(takeRun(buddy, 16, 64).length).toBe(16);
    expect(buddy.allocateRun(16, 64, () => expect.unreachable('no block'))).toBe(0);
    expectBuddyInvariants(buddy.blocks);
    buddy.check();
  });

  it('leaves the rest of the region free and maximal when take throws after any block, so everything merges back', () => {
    const initial = freeSnapshot(makeBuddy().blocks);
    // Counts a run makes whole (24 bytes: 20 of 21, the rest of a line): a stop after any block.
    for (const [size, count] of [
      [16, 64],
      [24, 20],
      [64, 8],
      [72, 7],
    ] as const) {
      const order = orderFor(size, 3);
      for (let stopAt = 0; stopAt < count; stopAt++) {
        const buddy = makeBuddy();
        const made: number[] = [];
        const stop = new Error('stop');
        expect(() =>
          buddy.allocateRun(size, count, (block) => {
            made.push(block);
            if (made.length === stopAt + 1) throw stop;
          }),
        ).toThrow(stop);
        expect(made.length).toBe(stopAt + 1);
        const region = made[0]!;
        const end = region + made.length * 2 ** order;
        // The region was cut from the 256 KiB block: past the blocks made, it is free in maximal blocks.
        expect(region).toBe(SMALLEST_FREE);
        expect(freeWithin(freeSnapshot(buddy.blocks), region, region + 256 * 1024), `${size} stopped at ${stopAt}`).toEqual(
          maximalBlocks(end, region + 256 * 1024),
        );
        expect(buddy.stats()).toMatchObject({ liveBlocks: made.length, usedBytes: end - region });
        expectBuddyInvariants(buddy.blocks);
        buddy.check();
        for (const block of made) buddy.release(block);
        expect(freeSnapshot(buddy.blocks)).toEqual(initial);
      }
    }
  });

  it('reports a damaged link of the next half before writing through it, the blocks made before staying live', () => {
    const buddy = makeBuddy();
    const made: number[] = [];
    const error = expectAllocError(
      () =>
        buddy.allocateRun(16, 64, (block) => {
          made.push(block);
          // The 16-byte half after the first block is the next carve's: break its back link.
          if (made.length === 1) buddy.blocks.u32[(block + 16 + FB_PREV) >>> 2] = 0x1234560;
        }),
      'HeapCorrupted',
    );
    expect(error.message).toContain('0x1234560');
    expect(made.length).toBe(1);
    expect(buddy.usableSize(made[0]!)).toBe(16);
    expect(buddy.stats().liveBlocks).toBe(1);
  });
});
