/**
 * Cross-thread behaviour driven from one JS thread: two handles on one heap (thread ids 1
 * and 2) interleave mallocs and frees of each other's blocks, so the remote-free path, the
 * full queue, the delayed-free states, abandon and reclaim run deterministically, with
 * `check()` after each step.
 */

import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';

import { type GlobalAllocator, MiB } from '@heaplab/core';
import { expectAllocError, HeapModel } from '@heaplab/test-kit';

import { collect, flushRemoteFrees, heapReport } from '../src/index.js';
import { NEVER_DELAYED_FREE, NO_DELAYED_FREE, USE_DELAYED_FREE } from '../src/layout.js';
import { delayedState, pageOf, twoHandles } from './helpers.js';

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

function handles(options: Record<string, unknown> = {}): [GlobalAllocator, GlobalAllocator] {
  const pair = twoHandles(options);
  open.push(...pair);
  return pair;
}

describe('cross-thread frees, delayed-free states, abandon and reclaim', () => {
  it("sends the first remote free into a full page through the owner heap's delayed list", () => {
    const [owner, other] = handles();
    // 64-byte blocks: a small page holds 1024 (the segment's first, after the header, 895);
    // fill past one page so the first goes full.
    const blocks: number[] = [];
    for (let i = 0; i < 1100; i++) blocks.push(owner.malloc(64));
    const first = blocks[0]!;
    const firstPage = pageOf(owner, first);
    const samePage = blocks.filter((block) => pageOf(owner, block) === firstPage);
    expect(samePage.length).toBeGreaterThan(800);
    // The owner's next slow path found the page full: remote frees must come through the delayed list.
    expect(delayedState(owner, first)).toBe(USE_DELAYED_FREE);
    expect(heapReport(owner).pages.full).toBeGreaterThanOrEqual(1);
    other.free(first);
    flushRemoteFrees(other);
    expect(delayedState(owner, first)).toBe(NO_DELAYED_FREE);
    owner.check();
    // A second remote free goes straight to thread_free.
    other.free(samePage[1]!);
    flushRemoteFrees(other);
    expect(delayedState(owner, first)).toBe(NO_DELAYED_FREE);
    // The owner's collect drains the delayed list: the page leaves the full queue.
    collect(owner);
    expect(heapReport(owner).pages.full).toBe(0);
    owner.check();
    // Both freed blocks come back to the owner.
    const again = new Set<number>();
    for (let i = 0; i < 2000 && !(again.has(first) && again.has(samePage[1]!)); i++) again.add(owner.malloc(64));
    expect(again.has(first) && again.has(samePage[1]!)).toBe(true);
    for (const block of [...blocks.filter((b) => b !== first && b !== samePage[1]), ...again]) owner.free(block);
    expect(owner.usedBytes()).toBe(0);
    owner.check();
  });

  it("refuses a double free of a block waiting on another page's thread_free list", () => {
    const [owner, other] = handles();
    const a = owner.malloc(100);
    const b = owner.malloc(100);
    other.free(a);
    expectAllocError(() => other.free(a), 'NotAllocated');
    expectAllocError(() => owner.free(a), 'NotAllocated');
    expectAllocError(() => owner.usableSize(a), 'NotAllocated');
    owner.free(b);
    owner.check();
    expect(owner.stats().liveBlocks).toBe(0);
  });

  it("abandons a detached thread's segments, keeps frees into them working, and reclaims them", () => {
    const [main, worker] = handles();
    const model = new HeapModel(worker);
    for (let i = 0; i < 400; i++) model.add(worker.malloc(16 + (i % 50) * 24), 16 + (i % 50) * 24);
    const big = worker.malloc(3 * MiB);
    model.add(big, 3 * MiB);
    const pages = new Set([...model.blocks.keys()].map((block) => (block === big ? 0 : pageOf(worker, block))));
    const blocks = [...model.blocks.keys()];
    const bytes = worker.usedBytes();
    worker.detach();
    main.check();
    const report = heapReport(main);
    expect(report.segments.abandoned).toBeGreaterThan(0);
    for (const page of pages) {
      if (page !== 0) expect(main.memory.u32[(page + 28) >>> 2]! & 3).toBe(NEVER_DELAYED_FREE);
    }
    expect(main.usedBytes()).toBe(bytes);
    // Frees into abandoned pages go to their thread_free lists.
    const modelMain = new HeapModel(main);
    for (const block of blocks.slice(0, 200)) {
      model.verify(block);
      main.free(block);
      model.blocks.delete(block);
    }
    main.check();
    // The main thread needs pages of those sizes: it reclaims the abandoned segments.
    for (let i = 0; i < 3000; i++) modelMain.add(main.malloc(16 + (i % 50) * 24), 16 + (i % 50) * 24);
    expect(heapReport(main).segments.abandoned).toBe(0);
    expect(heapReport(main).threads.find((thread) => thread.threadId === main.threadId)!.events.segmentsReclaimed).toBeGreaterThan(0);
    main.check();
    for (const block of [...model.blocks.keys()]) {
      model.verify(block);
      main.free(block);
    }
    modelMain.freeAll();
    expect(main.usedBytes()).toBe(0);
    expect(main.stats().liveBlocks).toBe(0);
    main.check();
  });

  it('keeps every invariant through random interleavings of two threads (model)', () => {
    type Op = { kind: 'malloc'; by: number; size: number } | { kind: 'free'; by: number; pick: number } | { kind: 'collect'; by: number; force: boolean };
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant('malloc' as const),
          by: fc.integer({ min: 0, max: 1 }),
          size: fc.oneof(fc.nat(128), fc.nat(3000), fc.nat(200_000)),
        }),
      },
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('free' as const), by: fc.integer({ min: 0, max: 1 }), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('collect' as const), by: fc.integer({ min: 0, max: 1 }), force: fc.boolean() }) },
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 120 }), fc.boolean(), (ops, secure) => {
        const pair = twoHandles({ secure });
        try {
          const models = pair.map((heap) => new HeapModel(heap));
          const live: number[] = [];
          const owner = new Map<number, number>();
          for (const step of ops) {
            const heap = pair[step.by]!;
            if (step.kind === 'malloc') {
              const address = heap.malloc(step.size);
              models[step.by]!.add(address, step.size);
              live.push(address);
              owner.set(address, step.by);
            } else if (step.kind === 'free' && live.length > 0) {
              const index = step.pick % live.length;
              const address = live[index]!;
              const model = models[owner.get(address)!]!;
              model.verify(address);
              model.blocks.delete(address);
              heap.free(address);
              live[index] = live[live.length - 1]!;
              live.pop();
            } else if (step.kind === 'collect') {
              collect(heap, step.force);
            }
            heap.check();
          }
          for (const model of models) model.verifyAll();
          let expected = 0;
          for (const address of live) expected += pair[0]!.usableSize(address);
          expect(pair[0]!.usedBytes()).toBe(expected);
          for (const address of live) pair[1]!.free(address);
          expect(pair[0]!.usedBytes()).toBe(0);
          pair[1]!.detach();
          pair[0]!.check();
        } finally {
          pair[0]!.detach();
        }
      }),
      { numRuns: 60, seed: 0x3e1 },
    );
  });
});
