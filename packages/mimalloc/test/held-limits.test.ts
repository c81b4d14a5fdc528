/**
 * Delayed page reuse with honest limits (issue #12): held pages are counted in pages and
 * bytes; a program of one thread that never calls `quiescent()` does not run out of memory
 * with nothing live; and when another attached thread that never reaches a quiescent point
 * is what keeps held pages back, the allocation fails and the figures name that thread.
 * Holds advance the write sequence as CPython's `_Py_qsbr_deferred_advance` does: once per
 * `QSBR_DEFERRED_LIMIT` holds, and on every hold past `HELD_LIMIT_BYTES` held.
 */

import { afterEach, describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';

import { collect, heapReport, mimallocBackend, statsTable } from '../src/index.js';
import { HELD_LIMIT_BYTES, QSBR_DEFERRED_LIMIT } from '../src/layout.js';
import { pageOf } from './helpers.js';

const open: GlobalAllocator[] = [];
afterEach(() => {
  for (const heap of open.splice(0)) heap.detach();
});

/** 200,000 blocks of 256 bytes allocated, then all freed: 51 MB of pages emptied and held. */
function churn(heap: GlobalAllocator): void {
  const blocks: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    const block = heap.malloc(256);
    expect(block).not.toBe(0);
    blocks.push(block);
  }
  for (const block of blocks) heap.free(block);
}

function heapOf(): GlobalAllocator {
  const heap = GlobalAllocator.create({ backend: mimallocBackend, options: { delayedPageReuse: true }, heapBytes: 64 * MiB });
  open.push(heap);
  return heap;
}

describe('delayed page reuse limits', () => {
  it('counts the held pages in pages and bytes, per heap and in all', () => {
    const heap = heapOf();
    churn(heap);
    const report = heapReport(heap);
    const mine = report.threads.find((thread) => thread.threadId === heap.threadId)!;
    expect(report.held.pages).toBeGreaterThan(700);
    expect(mine.heldPages).toBe(report.held.pages);
    expect(mine.heldBytes).toBe(report.held.bytes);
    expect(report.held.bytes).toBeGreaterThanOrEqual(200_000 * 256);
    expect(heap.usedBytes()).toBe(0);
    heap.check();
  });

  it('lets a single thread that never calls quiescent() allocate everything back', () => {
    const heap = heapOf();
    churn(heap);
    expect(heap.usedBytes()).toBe(0);
    const big = heap.malloc(40 * MiB);
    expect(big).not.toBe(0);
    heap.check();
    heap.free(big);
    heap.check();
  });

  it('names the thread that holds the pages back, and allocates once it passed a quiescent point', () => {
    for (const release of ['quiescent', 'idle', 'detach'] as const) {
      const heap = heapOf();
      const reader = GlobalAllocator.attachSync(heap.buffer, { backends: [mimallocBackend] });
      churn(heap);
      // The reader never passes a quiescent point: the pages stay held, the heap is full.
      expect(heap.malloc(40 * MiB)).toBe(0);
      const report = heapReport(heap);
      expect(report.held.heldBackBy).toContain(reader.threadId);
      expect(statsTable(heap)).toMatch(new RegExp(`held back by thread .*${reader.threadId}`));
      heap.check();
      if (release === 'quiescent') reader.quiescent();
      else if (release === 'idle') reader.idle();
      else reader.detach();
      const big = heap.malloc(40 * MiB);
      expect(big, release).not.toBe(0);
      heap.free(big);
      if (release !== 'detach') reader.detach();
      heap.check();
    }
  });
});

/** Advances of the write sequence (2 per advance) while `run` runs. */
function advancesDuring(heap: GlobalAllocator, run: () => void): number {
  const before = heap.stats().delayedFree.writeSequence;
  run();
  return (heap.stats().delayedFree.writeSequence - before) / 2;
}

/**
 * Fills one 64 KiB page with 4 KiB blocks and frees them all: the page empties and is held,
 * and the next round's first malloc takes it back (the hold is cancelled).
 */
function holdRound(heap: GlobalAllocator): void {
  const blocks = Array.from({ length: 16 }, () => heap.malloc(4096));
  for (const block of blocks) heap.free(block);
}

/** Blocks of `size` until they spill onto a second page; frees the first page's: it is held. */
function holdOnePage(heap: GlobalAllocator, size: number): number[] {
  const blocks = [heap.malloc(size)];
  const first = pageOf(heap, blocks[0]!);
  while (pageOf(heap, blocks[blocks.length - 1]!) === first) blocks.push(heap.malloc(size));
  for (const block of blocks) if (pageOf(heap, block) === first) heap.free(block);
  return blocks.filter((block) => pageOf(heap, block) !== first);
}

describe('holds and the write sequence (CPython deferred advance)', () => {
  it('advances once per QSBR_DEFERRED_LIMIT holds while little is held, not on every hold', () => {
    const heap = heapOf();
    const rounds = 200;
    let holds = 0;
    const advances = advancesDuring(heap, () => {
      for (let round = 0; round < rounds; round++) {
        const blocks = Array.from({ length: 16 }, () => heap.malloc(4096));
        for (const block of blocks) {
          const before = heapReport(heap).held.pages;
          heap.free(block);
          if (heapReport(heap).held.pages > before) holds++;
        }
      }
    });
    // Every round held a page at least once; each hold used to cost one advance.
    expect(holds).toBeGreaterThanOrEqual(rounds);
    expect(advances).toBe(Math.ceil(holds / QSBR_DEFERRED_LIMIT));
    heap.check();
  });

  it('advances on every hold once the heap holds more than HELD_LIMIT_BYTES', () => {
    const heap = heapOf();
    const blocks = Array.from({ length: 16 * 48 }, () => heap.malloc(4096));
    let heldBytes = 0;
    let holds = 0;
    let pastLimit = 0;
    const advances = advancesDuring(heap, () => {
      for (const block of blocks) {
        const before = heapReport(heap).held.pages;
        heap.free(block);
        const report = heapReport(heap);
        if (report.held.pages > before) {
          holds++;
          heldBytes = report.held.bytes;
          if (heldBytes > HELD_LIMIT_BYTES) pastLimit++;
        }
      }
    });
    expect(heapReport(heap).held.pages).toBe(holds);
    expect(pastLimit).toBeGreaterThan(20);
    // The holds below the limit advance once per ten; every one past it advances.
    expect(advances).toBe(pastLimit + Math.ceil((holds - pastLimit) / QSBR_DEFERRED_LIMIT));
    heap.check();
  });

  it('lets a lone thread that never calls quiescent() hold and reuse pages without running out', () => {
    const heap = heapOf();
    for (let round = 0; round < 2000; round++) holdRound(heap);
    churn(heap);
    const big = heap.malloc(40 * MiB);
    expect(big).not.toBe(0);
    heap.free(big);
    heap.check();
  });

  it('makes deferred goals reachable at collect, so the next quiescent points release them', () => {
    const heap = heapOf();
    const reader = GlobalAllocator.attachSync(heap.buffer, { backends: [mimallocBackend] });
    // Two holds: the first advances, the second takes the deferred goal, ahead of the write
    // sequence, which no quiescent point passes.
    const live = [...holdOnePage(heap, 1024), ...holdOnePage(heap, 2048)];
    const report = heapReport(heap);
    expect(report.held.pages).toBe(2);
    reader.quiescent();
    heap.quiescent();
    collect(heap);
    // The first page went back; the second waited for an advance, which the collect made.
    expect(heapReport(heap).held.pages).toBe(1);
    expect(heapReport(heap).held.awaitingAdvance).toBe(false);
    reader.quiescent();
    heap.quiescent();
    collect(heap);
    expect(heapReport(heap).held.pages).toBe(0);
    for (const block of live) heap.free(block);
    reader.detach();
    heap.check();
  });

  it('says when held pages wait for an advance rather than for a thread', () => {
    const heap = heapOf();
    const reader = GlobalAllocator.attachSync(heap.buffer, { backends: [mimallocBackend] });
    const first = holdOnePage(heap, 1024);
    // The first hold advanced: released by the next quiescent points and poll.
    reader.quiescent();
    heap.quiescent();
    collect(heap);
    expect(heapReport(heap).held.pages).toBe(0);
    const second = holdOnePage(heap, 2048);
    const report = heapReport(heap);
    expect(report.held.pages).toBe(1);
    expect(report.held.awaitingAdvance).toBe(true);
    expect(statsTable(heap)).toMatch(/held back by an advance of the write sequence/);
    for (const block of [...first, ...second]) heap.free(block);
    reader.detach();
    heap.check();
  });
});
