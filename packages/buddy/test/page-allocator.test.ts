import { AllocError, GlobalAllocator, hex, KiB, MiB, PAGE_SIZE } from '@heaplab/core';
import { makeBackendContext, recordPool } from '@heaplab/test-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { BUDDY_STATE_BYTES, BuddyAllocator, buddyBackend, BuddyPageAllocator } from '../src/index.js';
import { expectBuddyInvariants, freeSnapshot, walkBlocks } from './heap-walk.js';

const ARENA_START = 4 * MiB;
/** Pages of an 8 MiB pool at the arena start: its blocks run from 4.5 MiB to 12 MiB. */
const TOTAL_PAGES = (7.5 * MiB) / PAGE_SIZE;

/**
 * A page face and a byte face over one fresh 8 MiB heap, formatted by the page face; the pool
 * is recorded in core's table as the caller of a bare context must.
 */
function makeFaces(): { pages: BuddyPageAllocator; bytes: BuddyAllocator } {
  const ctx = makeBackendContext({ arenaBytes: 8 * MiB, stateBytes: BUDDY_STATE_BYTES });
  const pages = new BuddyPageAllocator(ctx);
  pages.init(ARENA_START, 8 * MiB);
  recordPool(ctx.memory, ARENA_START, 8 * MiB);
  return { pages, bytes: new BuddyAllocator(ctx) };
}

function kindOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    if (error instanceof AllocError) return error.kind;
    throw error;
  }
  return 'nothing thrown';
}

/** The blocks of the heap that are not free, as `address:order:kind`. */
function liveBlocks(pages: BuddyPageAllocator): string[] {
  return walkBlocks(pages.blocks)
    .filter((block) => block.kind !== 'free')
    .map((block) => `${hex(block.address)}:${block.order}:${block.kind}`);
}

describe('BuddyPageAllocator', () => {
  it('counts the whole pages of the block areas', () => {
    const { pages } = makeFaces();
    expect(pages.pageSize).toBe(4096);
    expect(pages.totalPages()).toBe(TOTAL_PAGES);
    expect(pages.availablePages()).toBe(TOTAL_PAGES);
    expect(pages.usedPages()).toBe(0);
    expect(pages.largestFreePages()).toBe(1024);
  });

  it('serves a run from the next power of two and frees its tail at once', () => {
    const { pages, bytes } = makeFaces();
    const initial = freeSnapshot(pages.blocks);
    const run = pages.allocPages(3, PAGE_SIZE);
    expect(run).toBe(0x480000);
    expect(liveBlocks(pages)).toEqual(['0x480000:13:pages', '0x482000:12:pages']);
    expect(freeSnapshot(pages.blocks)).toContain('0x483000:12');
    expect(pages.availablePages()).toBe(TOTAL_PAGES - 3);
    expect(pages.usedPages()).toBe(3);
    expect(bytes.stats()).toMatchObject({ usedBytes: 3 * PAGE_SIZE, requestedBytes: 3 * PAGE_SIZE, liveBlocks: 2 });
    expectBuddyInvariants(pages.blocks);
    bytes.check();
    pages.deallocPages(run, 3);
    expect(freeSnapshot(pages.blocks)).toEqual(initial);
    expect(pages.availablePages()).toBe(TOTAL_PAGES);
    bytes.check();
  });

  it('aligns runs to any power-of-two multiple of the page size without losing pages', () => {
    const { pages, bytes } = makeFaces();
    const one = pages.allocPages(1, 64 * KiB);
    expect(one % (64 * KiB)).toBe(0);
    expect(pages.availablePages()).toBe(TOTAL_PAGES - 1);
    const five = pages.allocPages(5, 1 * MiB);
    expect(five % MiB).toBe(0);
    expect(pages.availablePages()).toBe(TOTAL_PAGES - 6);
    expect(liveBlocks(pages).filter((block) => block.startsWith(hex(five)) || block.startsWith(hex(five + 4 * PAGE_SIZE)))).toEqual([
      `${hex(five)}:14:pages`,
      `${hex(five + 4 * PAGE_SIZE)}:12:pages`,
    ]);
    pages.deallocPages(one, 1);
    pages.deallocPages(five, 5);
    expect(pages.availablePages()).toBe(TOTAL_PAGES);
    bytes.check();
  });

  it('refuses bad alignments and counts, and answers NoMemory when no block is large enough', () => {
    const { pages, bytes } = makeFaces();
    const before = freeSnapshot(pages.blocks);
    for (const align of [0, 100, 2048, 3 * PAGE_SIZE, 2 ** 31, Number.NaN]) {
      expect(
        kindOf(() => pages.allocPages(1, align)),
        `alignment ${align}`,
      ).toBe('InvalidParam');
      expect(kindOf(() => pages.allocPagesAt(8 * MiB, 1, align))).toBe('InvalidParam');
    }
    for (const count of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
      expect(
        kindOf(() => pages.allocPages(count, PAGE_SIZE)),
        `count ${count}`,
      ).toBe('InvalidParam');
      expect(kindOf(() => pages.deallocPages(8 * MiB, count))).toBe('InvalidParam');
    }
    expect(kindOf(() => pages.allocPages(1025, PAGE_SIZE))).toBe('NoMemory');
    expect(kindOf(() => pages.allocPages(2 ** 40, PAGE_SIZE))).toBe('NoMemory');
    expect(kindOf(() => pages.allocPages(1, 8 * MiB))).toBe('NoMemory');
    const full = pages.allocPages(1024, PAGE_SIZE);
    expect(full).toBe(8 * MiB);
    let message = '';
    try {
      pages.allocPages(1024, PAGE_SIZE);
    } catch (error) {
      message = (error as AllocError).message;
    }
    expect(message).toContain(`${TOTAL_PAGES - 1024} of ${TOTAL_PAGES} pages free`);
    pages.deallocPages(full, 1024);
    expect(freeSnapshot(pages.blocks)).toEqual(before);
    bytes.check();
  });

  it('refuses double and mismatched frees, changing nothing', () => {
    const { pages, bytes } = makeFaces();
    const run = pages.allocPages(5, PAGE_SIZE);
    const other = pages.allocPages(2, PAGE_SIZE);
    const state = (): unknown => ({ live: liveBlocks(pages), free: freeSnapshot(pages.blocks), stats: bytes.stats() });
    const before = state();
    expect(kindOf(() => pages.deallocPages(run, 6))).toBe('NotAllocated');
    expect(kindOf(() => pages.deallocPages(run + PAGE_SIZE, 1))).toBe('NotAllocated');
    expect(kindOf(() => pages.deallocPages(run + 8, 1))).toBe('InvalidParam');
    expect(kindOf(() => pages.deallocPages(ARENA_START, 1))).toBe('InvalidParam');
    expect(kindOf(() => pages.deallocPages(12 * MiB - PAGE_SIZE, 2))).toBe('InvalidParam');
    expect(state()).toEqual(before);
    pages.deallocPages(other, 2);
    expect(kindOf(() => pages.deallocPages(other, 2))).toBe('NotAllocated');
    // A run's first blocks can be freed on their own: here the first 4 of 5 pages.
    pages.deallocPages(run, 4);
    expect(liveBlocks(pages)).toEqual([`${hex(run + 4 * PAGE_SIZE)}:12:pages`]);
    pages.deallocPages(run + 4 * PAGE_SIZE, 1);
    expect(bytes.stats().liveBlocks).toBe(0);
    bytes.check();
  });

  it('allocates exactly at an address by splitting the free blocks around it', () => {
    const { pages, bytes } = makeFaces();
    const initial = freeSnapshot(pages.blocks);
    const at = 8 * MiB + 3 * PAGE_SIZE;
    expect(pages.allocPagesAt(at, 5, PAGE_SIZE)).toBe(at);
    expect(liveBlocks(pages)).toEqual([`${hex(at)}:12:pages`, `${hex(at + PAGE_SIZE)}:14:pages`]);
    expect(pages.availablePages()).toBe(TOTAL_PAGES - 5);
    expectBuddyInvariants(pages.blocks);
    const state = (): unknown => ({ free: freeSnapshot(pages.blocks), stats: bytes.stats() });
    const before = state();
    expect(kindOf(() => pages.allocPagesAt(at + 4 * PAGE_SIZE, 1, PAGE_SIZE))).toBe('NoMemory');
    expect(kindOf(() => pages.allocPagesAt(at - 2 * PAGE_SIZE, 4, PAGE_SIZE))).toBe('NoMemory');
    expect(kindOf(() => pages.allocPagesAt(at - PAGE_SIZE, 2, 2 * PAGE_SIZE))).toBe('NoMemory');
    expect(kindOf(() => pages.allocPagesAt(at, 1, 2 * PAGE_SIZE))).toBe('InvalidParam');
    expect(kindOf(() => pages.allocPagesAt(at + 8, 1, PAGE_SIZE))).toBe('InvalidParam');
    expect(kindOf(() => pages.allocPagesAt(ARENA_START, 1, PAGE_SIZE))).toBe('InvalidParam');
    expect(kindOf(() => pages.allocPagesAt(12 * MiB - PAGE_SIZE, 2, PAGE_SIZE))).toBe('InvalidParam');
    expect(state()).toEqual(before);
    const byteBlock = bytes.allocate(100, 8);
    expect(kindOf(() => pages.allocPagesAt(byteBlock - (byteBlock % PAGE_SIZE), 1, PAGE_SIZE))).toBe('NoMemory');
    bytes.release(byteBlock);
    pages.deallocPages(at, 5);
    expect(freeSnapshot(pages.blocks)).toEqual(initial);
    bytes.check();
  });

  it('keeps the two faces apart: neither frees the other blocks', () => {
    const { pages, bytes } = makeFaces();
    const run = pages.allocPages(1, PAGE_SIZE);
    const block = bytes.allocate(PAGE_SIZE, PAGE_SIZE);
    expect(kindOf(() => bytes.release(run))).toBe('NotAllocated');
    expect(kindOf(() => bytes.usableSize(run))).toBe('NotAllocated');
    expect(kindOf(() => pages.deallocPages(block, 1))).toBe('NotAllocated');
    pages.deallocPages(run, 1);
    bytes.release(block);
    expect(pages.availablePages()).toBe(TOTAL_PAGES);
    bytes.check();
  });

  it('serves pages from a GlobalAllocator heap that mallocs at the same time, with or without the thread cache', () => {
    for (const tcache of [false, true]) {
      const heap = GlobalAllocator.create({ backend: buddyBackend, heapBytes: 8 * MiB, options: { tcache } });
      const pages = new BuddyPageAllocator(heap.backendOf(buddyBackend).blocks);
      const small = heap.malloc(100);
      const run = pages.allocPages(7, PAGE_SIZE);
      const big = heap.malloc(50_000);
      if (tcache) {
        // The refill that served `small` took blocks of 104 bytes for the bin, and stats()
        // gave them back; the rest is exact.
        expect(heap.stats()).toMatchObject({ usedBytes: 128 + 7 * PAGE_SIZE + 65536, requestedBytes: null, liveBlocks: 5 });
      } else {
        expect(heap.stats()).toMatchObject({ usedBytes: 128 + 7 * PAGE_SIZE + 65536, requestedBytes: 100 + 7 * PAGE_SIZE + 50_000, liveBlocks: 5 });
      }
      heap.check();
      pages.deallocPages(run, 7);
      heap.free(small);
      heap.free(big);
      expect(heap.stats().usedBytes).toBe(0);
      expect(pages.availablePages()).toBe(pages.totalPages());
      heap.check();
      heap.detach();
    }
  });

  it('keeps runs disjoint and every invariant through random page and byte sequences', () => {
    type Op =
      | { kind: 'pages'; count: number; alignLog: number }
      | { kind: 'at'; page: number; count: number }
      | { kind: 'bytes'; size: number }
      | { kind: 'free'; pick: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('pages' as const), count: fc.integer({ min: 1, max: 40 }), alignLog: fc.integer({ min: 12, max: 17 }) }),
      fc.record({ kind: fc.constant('at' as const), page: fc.nat(TOTAL_PAGES - 1), count: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ kind: fc.constant('bytes' as const), size: fc.nat(10_000) }),
      fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 50 }), (ops) => {
        const { pages, bytes } = makeFaces();
        const initial = freeSnapshot(pages.blocks);
        const runs = new Map<number, number>(); // address -> pages
        const byteBlocks = new Set<number>();
        for (const step of ops) {
          if (step.kind === 'pages') {
            try {
              const run = pages.allocPages(step.count, 2 ** step.alignLog);
              expect(run % 2 ** step.alignLog).toBe(0);
              runs.set(run, step.count);
            } catch (error) {
              expect((error as AllocError).kind).toBe('NoMemory');
            }
          } else if (step.kind === 'at') {
            const address = 4.5 * MiB + step.page * PAGE_SIZE;
            const count = Math.min(step.count, TOTAL_PAGES - step.page);
            const end = address + count * PAGE_SIZE;
            const blocked = walkBlocks(pages.blocks).some(
              (block) => block.kind !== 'free' && block.address < end && address < block.address + 2 ** block.order,
            );
            if (blocked) {
              expect(kindOf(() => pages.allocPagesAt(address, count, PAGE_SIZE))).toBe('NoMemory');
            } else {
              expect(pages.allocPagesAt(address, count, PAGE_SIZE)).toBe(address);
              runs.set(address, count);
            }
          } else if (step.kind === 'bytes') {
            const address = bytes.allocate(step.size, 8);
            if (address !== 0) byteBlocks.add(address);
          } else {
            const all = [...runs.keys(), ...byteBlocks];
            if (all.length === 0) continue;
            const address = all[step.pick % all.length]!;
            if (runs.has(address)) {
              pages.deallocPages(address, runs.get(address)!);
              runs.delete(address);
            } else {
              bytes.release(address);
              byteBlocks.delete(address);
            }
          }
          const walked = expectBuddyInvariants(pages.blocks);
          let runPages = 0;
          for (const [address, count] of runs) {
            runPages += count;
            const covered = walked
              .filter((block) => block.kind === 'pages' && block.address >= address && block.address < address + count * PAGE_SIZE)
              .reduce((sum, block) => sum + 2 ** block.order, 0);
            expect(covered, `run ${hex(address)} of ${count} pages`).toBe(count * PAGE_SIZE);
          }
          const pageBlocks = walked.filter((block) => block.kind === 'pages').reduce((sum, block) => sum + 2 ** block.order, 0);
          expect(pageBlocks).toBe(runPages * PAGE_SIZE);
          const freePages = walked.filter((block) => block.kind === 'free' && block.order >= 12).reduce((sum, block) => sum + 2 ** (block.order - 12), 0);
          expect(pages.availablePages()).toBe(freePages);
          bytes.check();
        }
        for (const [address, count] of runs) pages.deallocPages(address, count);
        for (const address of byteBlocks) bytes.release(address);
        expect(freeSnapshot(pages.blocks)).toEqual(initial);
      }),
      { numRuns: 40, seed: 0x9a6e5 },
    );
  });
});
