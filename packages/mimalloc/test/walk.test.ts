/**
 * The heap walk and the per-class tables (`walk()`, `classStats()`): after random sequences
 * of mallocs and frees from two handles (so blocks wait on thread_free and delayed lists),
 * with worker threads owning pages, and in secure mode, the walk tiles the arena, agrees
 * with `stats()` (the five rules of issue #15) and with a model of the live blocks, and the
 * bins add up; a damaged free list makes the walk throw `HeapCorrupted`.
 */

import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';

import { GlobalAllocator, type HeapRegion, MiB, type StatsTable } from '@heaplab/core';
import { expectAllocError } from '@heaplab/test-kit';

import { BIN_MAX, collect, flushRemoteFrees, mimallocBackend, mimallocOf, statsTable } from '../src/index.js';
import { BIN_STAT_BYTES, BIN_STAT_ENTRIES, PG_LOCAL_FREE, SEGMENT_BYTES } from '../src/layout.js';
import { MiWorker } from './mi-workers.js';
import { pageOf, twoHandles } from './helpers.js';
import type { StressResult } from './workers/mi-worker.js';

const open: GlobalAllocator[] = [];
afterEach(() => {
  for (const heap of open.splice(0)) {
    try {
      heap.detach();
    } catch {
      // already detached by the test
    }
  }
});

function handles(options: Record<string, unknown> = {}, heapBytes = 32 * MiB): [GlobalAllocator, GlobalAllocator] {
  const pair = twoHandles(options, heapBytes);
  open.push(...pair);
  return pair;
}

function table(heap: GlobalAllocator, name: string): StatsTable {
  const found = heap.classStats().find((t) => t.name === name);
  if (found === undefined) throw new Error(`no '${name}' table`);
  return found;
}

/**
 * Walks `heap` and expects what issue #15 asks of every backend on a quiescent heap: the
 * regions tile the arena; live regions are as many as `liveBlocks`, their bytes sum to
 * `grantedBytes`, each spans its block's usable size; free regions are as many as
 * `freeBlocks`. With `model`, the live regions are exactly its blocks. Also checks the bins
 * table against the walk.
 */
function expectWalkAgrees(heap: GlobalAllocator, model?: ReadonlySet<number>): HeapRegion[] {
  const regions = heap.walk();
  const stats = heap.stats();
  let at = heap.arenaStart;
  for (const region of regions) {
    expect(region.address).toBe(at);
    at += region.bytes;
  }
  expect(at).toBe(heap.arenaEnd);
  const live = regions.filter((r) => r.kind === 'live');
  const free = regions.filter((r) => r.kind === 'free');
  expect(live.length).toBe(stats.liveBlocks);
  expect(live.reduce((sum, r) => sum + r.bytes, 0)).toBe(stats.grantedBytes);
  expect(free.length).toBe(stats.freeBlocks);
  for (const region of live) expect(heap.usableSize(region.address)).toBe(region.bytes);
  if (model !== undefined) {
    expect(new Set(live.map((r) => r.address))).toEqual(model);
  }
  // The bins add up to the walk: live blocks, and free blocks besides the pool's free segments.
  const bins = table(heap, 'bins').rows;
  const sum = (key: string): number => bins.reduce((total, row) => total + (row[key] as number), 0);
  expect(sum('live')).toBe(live.length);
  const freeSegments = free.filter((r) => r.detail === 'free segment of the pool').length;
  expect(sum('free') + freeSegments).toBe(free.length);
  return regions;
}

describe('walk() and classStats()', () => {
  it('counts a bin entry per size class and one for huge blocks', () => {
    expect(BIN_STAT_ENTRIES).toBe(BIN_MAX + 1);
  });

  it('draws a segment: header, descriptors, padding, live and free blocks, page tails, free segments', () => {
    const [heap] = handles({}, 16 * MiB);
    const a = heap.malloc(100);
    const b = heap.malloc(100);
    heap.malloc(100);
    heap.free(b);
    const huge = heap.malloc(5 * MiB);
    const regions = expectWalkAgrees(heap, new Set([a, a + 224, huge]));
    const segment = a - (a % SEGMENT_BYTES);
    expect(regions.find((r) => r.address === segment)).toMatchObject({ kind: 'metadata', detail: 'small segment header', thread: heap.threadId });
    expect(regions.find((r) => r.address === a)).toMatchObject({ kind: 'live', bytes: 112, thread: heap.threadId });
    expect(regions.find((r) => r.address === a)!.detail).toMatch(/^bin \d+ \(112 B\), small page 0$/);
    expect(regions.find((r) => r.address === b)).toMatchObject({ kind: 'free', bytes: 112 });
    expect(regions.find((r) => r.address === b)!.detail).toContain('local_free list');
    // Blocks the free list was not extended over yet are left untouched.
    expect(regions.some((r) => r.kind === 'untouched' && r.address > a && r.address < segment + 64 * 1024)).toBe(true);
    expect(regions.find((r) => r.address === huge)).toMatchObject({ kind: 'live', detail: 'huge block', thread: heap.threadId });
    // 4 segments: one small, two under the huge block, one free.
    expect(regions.filter((r) => r.kind === 'free' && r.detail === 'free segment of the pool')).toHaveLength(1);
    expect(regions.some((r) => r.kind === 'header' && r.detail!.startsWith('tail of small page'))).toBe(true);
  });

  it('agrees with stats() and a model after random sequences from two handles', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.constantFrom('malloc', 'malloc', 'free', 'remote-free'),
            size: fc.oneof(fc.integer({ min: 1, max: 512 }), fc.integer({ min: 1, max: 70_000 }), fc.constant(3 * MiB)),
            pick: fc.nat(),
            by: fc.constantFrom(0, 1),
          }),
          { maxLength: 300 },
        ),
        (steps) => {
          const pair = handles({ stats: true });
          const live = new Map<number, number>();
          for (const step of steps) {
            const keys = [...live.keys()];
            if (step.op === 'malloc' || keys.length === 0) {
              const address = pair[step.by]!.malloc(step.size);
              if (address !== 0) live.set(address, step.by);
            } else {
              const address = keys[step.pick % keys.length]!;
              // A remote free is one by the other handle: onto thread_free or a delayed list.
              const by = step.op === 'remote-free' ? 1 - live.get(address)! : live.get(address)!;
              pair[by]!.free(address);
              live.delete(address);
            }
          }
          expectWalkAgrees(pair[0], new Set(live.keys()));
          pair[0].check();
          // Allocated minus freed per bin is what is live in it.
          for (const row of table(pair[0], 'bins').rows) expect((row.allocated as number) - (row.freed as number)).toBe(row.live);
          for (const heap of pair.splice(0)) heap.detach();
          open.splice(0);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('reports blocks waiting on thread_free, delayed lists and remote-free buffers as free, naming the list', () => {
    const [owner, other] = handles();
    const blocks: number[] = [];
    // Past one page of 64-byte blocks, so the first page goes to the full queue.
    for (let i = 0; i < 1100; i++) blocks.push(owner.malloc(64));
    // Pushed one by one: the first goes through the delayed list, the second to thread_free.
    other.free(blocks[0]!);
    flushRemoteFrees(other);
    other.free(blocks[1]!);
    flushRemoteFrees(other);
    // Left in the other thread's remote-free buffer: free, though its owner cannot reuse it yet.
    other.free(blocks[3]!);
    const live = new Set(blocks.slice(2).filter((block) => block !== blocks[3]));
    const regions = expectWalkAgrees(owner, live);
    const detail = (address: number): string => regions.find((r) => r.address === address)!.detail!;
    expect(detail(blocks[0]!)).toContain('delayed list');
    expect(detail(blocks[1]!)).toContain('thread_free list');
    expect(detail(blocks[2]!)).toContain('full');
    expect(detail(blocks[3]!)).toContain('remote-free buffer');
    expectAllocError(() => owner.free(blocks[3]!), 'NotAllocated');
    collect(owner);
    expectWalkAgrees(owner, live);
    flushRemoteFrees(other);
    collect(owner);
    expectWalkAgrees(owner, live);
    for (const block of live) owner.free(block);
    expectWalkAgrees(owner, new Set());
  });

  it('walks pages held for delayed page reuse', () => {
    const [heap] = handles({ delayedPageReuse: true });
    const blocks = Array.from({ length: 2000 }, () => heap.malloc(64));
    for (const block of blocks) heap.free(block);
    const regions = expectWalkAgrees(heap, new Set());
    expect(regions.some((r) => r.kind === 'free' && r.detail!.includes('held'))).toBe(true);
  });

  it('walks in secure mode', () => {
    const [heap, other] = handles({ secure: true });
    const blocks = Array.from({ length: 400 }, (_, i) => heap.malloc(16 + (i % 40) * 40));
    for (let i = 0; i < blocks.length; i += 2) (i % 4 === 0 ? heap : other).free(blocks[i]!);
    const live = new Set(blocks.filter((_, i) => i % 2 === 1));
    expectWalkAgrees(heap, live);
    expect(heap.walk().filter((r) => r.kind === 'free' && r.detail!.includes('free list')).length).toBeGreaterThan(0);
  });

  it('throws HeapCorrupted for a damaged free list, never loops', () => {
    for (const secure of [false, true]) {
      const [heap] = handles({ secure });
      const blocks = Array.from({ length: 10 }, () => heap.malloc(48));
      heap.free(blocks[3]!);
      heap.free(blocks[5]!);
      expectWalkAgrees(heap);
      const u32 = heap.memory.u32;
      const page = pageOf(heap, blocks[5]!);
      expect(u32[(page + PG_LOCAL_FREE) >>> 2]).toBe(blocks[5]);
      const link = u32[blocks[5]! >>> 2]!;
      // A link into the middle of a block.
      u32[blocks[5]! >>> 2] = secure ? 0xdeadbeef : blocks[3]! + 8;
      expect(expectAllocError(() => heap.walk(), 'HeapCorrupted').message).toMatch(/walk: page .*(not one of its extended blocks|twice)/);
      // A cycle: the second block links back to the first.
      u32[blocks[5]! >>> 2] = link;
      const link3 = u32[blocks[3]! >>> 2]!;
      if (!secure) {
        u32[blocks[3]! >>> 2] = blocks[5]!;
        expect(expectAllocError(() => heap.walk(), 'HeapCorrupted').message).toContain('twice on its lists');
      }
      u32[blocks[3]! >>> 2] = link3;
      expectWalkAgrees(heap);
      for (const h of open.splice(0)) h.detach();
    }
  });

  it('keeps cumulative and peak counts per bin with stats=true, summed over threads, and prints them in statsTable', () => {
    const [heap, other] = handles({ stats: true });
    const first = Array.from({ length: 30 }, () => heap.malloc(200));
    for (const block of first.slice(0, 20)) heap.free(block);
    const second = Array.from({ length: 5 }, () => other.malloc(200));
    for (const block of second) heap.free(block);
    const row = table(heap, 'bins').rows.find((r) => r.blockSize === 224)!;
    // Allocated by each, freed by the heap that freed: 30 + 5 allocated, 25 freed.
    expect(row).toMatchObject({ allocated: 35, freed: 25, live: 10, pages: 2 });
    // Thread 1 peaked at 30 live, thread 2 at 5 (it freed none itself).
    expect(row.peak).toBe(35);
    const text = statsTable(heap, true);
    expect(text).toContain('bins: ');
    expect(text).toMatch(/^\s+\d+\s+224\s+2\s+0\s+10\s+\d+\s+35\s+25\s+35$/m);
    expect(statsTable(heap)).not.toContain('bins: ');
    // The huge row counts huge blocks.
    other.free(heap.malloc(5 * MiB));
    expect(table(heap, 'bins').rows.find((r) => r.bin === 'huge')).toMatchObject({ live: 0, allocated: 1, freed: 1, peak: 1 });
    const kinds = table(heap, 'page kinds').rows;
    // Each thread takes pages from segments of its own.
    expect(kinds.find((r) => r.kind === 'small')).toMatchObject({ segments: 2, pages: 2, liveBytes: 10 * 224 });
  });

  it('counts nothing without the stats option, and its bins table has no counted columns', () => {
    const [heap, other] = handles();
    const blocks = Array.from({ length: 30 }, () => heap.malloc(200));
    for (const block of blocks.slice(0, 10)) other.free(block);
    const bins = table(heap, 'bins');
    expect(bins.columns.map((c) => c.key)).toEqual(['bin', 'blockSize', 'pages', 'fullPages', 'live', 'free']);
    expect(bins.rows.find((r) => r.blockSize === 224)).toMatchObject({ live: 20, pages: 1 });
    const counters = heap.memory.u32.subarray(mimallocOf(heap).context.binStats, mimallocOf(heap).context.binStats + (BIN_STAT_ENTRIES * BIN_STAT_BYTES) / 4);
    expect(counters.every((word) => word === 0)).toBe(true);
    expectWalkAgrees(heap);
  });
});

describe('walk() with worker threads owning pages', () => {
  it('agrees with stats() while two workers own pages, and after they detach', async () => {
    const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 64 * MiB });
    open.push(heap);
    const transfer = new SharedArrayBuffer(4 * 64);
    const workers = [new MiWorker(), new MiWorker()];
    try {
      const results = await Promise.all(
        workers.map((worker, index) =>
          worker.run<StressResult>({ kind: 'stress', buffer: heap.buffer, transfer, seed: 0x51ed + index, iterations: 4_000, keepLive: 60 }),
        ),
      );
      const slots = [...new Uint32Array(transfer)].filter((address) => address !== 0);
      const live = new Set([...results.flatMap((r) => r.leftovers), ...slots]);
      const regions = expectWalkAgrees(heap, live);
      const owners = new Set(regions.filter((r) => r.kind === 'live').map((r) => r.thread));
      expect(owners.size).toBe(2);
      expect(owners.has(heap.threadId)).toBe(false);
      heap.check();
      await Promise.all(workers.map((worker) => worker.run({ kind: 'owner-detach' })));
      // Their segments are abandoned: pages without an owning thread.
      const after = expectWalkAgrees(heap, live);
      expect(after.filter((r) => r.kind === 'live' && r.thread !== undefined && r.detail !== 'huge block')).toHaveLength(0);
      expect(after.some((r) => r.kind === 'live' && r.detail!.includes('abandoned'))).toBe(true);
      for (const block of live) heap.free(block);
      expectWalkAgrees(heap, new Set());
      heap.check();
    } finally {
      await Promise.all(workers.map((worker) => worker.terminate()));
    }
  }, 60_000);
});
