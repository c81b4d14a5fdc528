import { afterEach, describe, expect, it } from 'vitest';

import type { GlobalAllocator } from '@heaplab/core';

import { collect, flushRemoteFrees, heapReport, mimallocOf } from '../src/index.js';
import { heldGoal } from '../src/held-pages.js';
import { PAGE_IN_USE, PG_BIN, PG_FLAGS, PG_OWNER, PG_RESERVED, PG_USED } from '../src/layout.js';
import { pageOf, twoHandles } from './helpers.js';

const open: GlobalAllocator[] = [];
afterEach(() => {
  for (const heap of open.splice(0)) heap.detach();
});

/** Two handles (threads 1 and 2) on a fresh heap; detached after the test. */
function handles(delayedPageReuse: boolean): [GlobalAllocator, GlobalAllocator] {
  const pair = twoHandles({ delayedPageReuse });
  open.push(...pair);
  return pair;
}

const SIZE = 1024;
/** Another size class, in the same kind of segment (small pages). */
const OTHER_SIZE = 2048;

function word(heap: GlobalAllocator, page: number, field: number): number {
  return Atomics.load(heap.memory.u32, (page + field) >>> 2);
}

/**
 * Allocates `SIZE` blocks until they spill onto a second page, then frees every block of the
 * first page, which becomes empty while its bin still has the second page (so without the
 * option it is freed at once rather than retired). Returns the two page descriptors and
 * the blocks still live on the second.
 */
function emptyFirstPage(heap: GlobalAllocator): { emptied: number; other: number; live: number[] } {
  const blocks: number[] = [heap.malloc(SIZE)];
  const emptied = pageOf(heap, blocks[0]!);
  for (;;) {
    const block = heap.malloc(SIZE);
    blocks.push(block);
    if (pageOf(heap, block) !== emptied) break;
  }
  const other = pageOf(heap, blocks[blocks.length - 1]!);
  for (const block of blocks) if (pageOf(heap, block) === emptied) heap.free(block);
  return { emptied, other, live: blocks.filter((block) => pageOf(heap, block) === other) };
}

function heldCount(heap: GlobalAllocator): number {
  return heapReport(heap).pages.held;
}

describe('delayed page reuse (delayedPageReuse)', () => {
  it("holds an emptied page: still its bin's, not given to another size class", () => {
    const [owner, reader] = handles(true);
    const { emptied } = emptyFirstPage(owner);
    expect(heldCount(owner)).toBe(1);
    expect(heldGoal(mimallocOf(owner).context, emptied)).not.toBe(0);
    expect(word(owner, emptied, PG_FLAGS) & PAGE_IN_USE).toBe(PAGE_IN_USE);
    expect(word(owner, emptied, PG_USED)).toBe(0);
    const bin = word(owner, emptied, PG_BIN);
    owner.check();
    const other = owner.malloc(OTHER_SIZE);
    expect(pageOf(owner, other)).not.toBe(emptied);
    expect(word(owner, emptied, PG_BIN)).toBe(bin);
    // A collect before the other thread passes a quiescent point keeps the hold.
    owner.quiescent();
    collect(owner);
    collect(owner, true);
    expect(heldCount(owner)).toBe(1);
    owner.check();
    reader.check();
  });

  it('lets its own size class reuse the held page, which cancels the hold', () => {
    const [owner] = handles(true);
    const { emptied, other } = emptyFirstPage(owner);
    // Use up the second page: the next block of the size class must come from the held page.
    const left = word(owner, other, PG_RESERVED) - word(owner, other, PG_USED);
    for (let i = 0; i < left; i++) expect(pageOf(owner, owner.malloc(SIZE))).toBe(other);
    const reused = owner.malloc(SIZE);
    expect(pageOf(owner, reused)).toBe(emptied);
    expect(heldGoal(mimallocOf(owner).context, emptied)).toBe(0);
    expect(heldCount(owner)).toBe(0);
    owner.check();
    // Emptied again, it is held again with a new goal.
    owner.free(reused);
    expect(heldCount(owner)).toBe(1);
    owner.check();
  });

  it('releases the page once every thread passed a quiescent point, at collect', () => {
    const [owner, reader] = handles(true);
    const { emptied } = emptyFirstPage(owner);
    reader.quiescent();
    collect(owner);
    expect(heldCount(owner)).toBe(1);
    owner.quiescent();
    collect(owner);
    expect(heldCount(owner)).toBe(0);
    expect(word(owner, emptied, PG_FLAGS) & PAGE_IN_USE).toBe(0);
    owner.check();
    // The slot can now take another size class.
    expect(pageOf(owner, owner.malloc(OTHER_SIZE))).toBe(emptied);
    owner.check();
  });

  it('releases the page on the allocation slow path once the goal is reached', () => {
    const [owner, reader] = handles(true);
    const { emptied } = emptyFirstPage(owner);
    reader.quiescent();
    owner.quiescent();
    // The first block of a new size class takes the slow path, which polls the held pages
    // before it looks for a page slot.
    expect(pageOf(owner, owner.malloc(OTHER_SIZE))).toBe(emptied);
    expect(heldCount(owner)).toBe(0);
    owner.check();
  });

  it('without the option frees the emptied page at once, as before', () => {
    const [owner] = handles(false);
    const { emptied } = emptyFirstPage(owner);
    expect(heldCount(owner)).toBe(0);
    expect(word(owner, emptied, PG_FLAGS) & PAGE_IN_USE).toBe(0);
    expect(pageOf(owner, owner.malloc(OTHER_SIZE))).toBe(emptied);
    owner.check();
  });

  it('keeps the hold through detach and reclaim by another thread', () => {
    const [survivor, leaver] = handles(true);
    const { emptied, other, live } = emptyFirstPage(leaver);
    expect(heldCount(survivor)).toBe(1);
    // The detaching thread goes offline, but the survivor has not passed the goal yet.
    open.splice(open.indexOf(leaver), 1);
    leaver.detach();
    const abandonedReport = heapReport(survivor);
    expect(abandonedReport.segments.abandoned).toBe(1);
    expect(abandonedReport.pages.held).toBe(1);
    expect(word(survivor, emptied, PG_OWNER)).toBe(0);
    survivor.check();
    // A forced collect reclaims the segment; the page stays held, now in the survivor's heap.
    collect(survivor, true);
    expect(heapReport(survivor).segments.abandoned).toBe(0);
    expect(heldCount(survivor)).toBe(1);
    expect(word(survivor, emptied, PG_OWNER)).toBe(survivor.threadId);
    expect(word(survivor, other, PG_OWNER)).toBe(survivor.threadId);
    survivor.check();
    expect(pageOf(survivor, survivor.malloc(OTHER_SIZE))).not.toBe(emptied);
    survivor.quiescent();
    collect(survivor);
    expect(heldCount(survivor)).toBe(0);
    expect(word(survivor, emptied, PG_FLAGS) & PAGE_IN_USE).toBe(0);
    survivor.check();
    for (const block of live) survivor.free(block);
    survivor.check();
  });

  it('holds a page emptied by remote frees at abandon, and frees held pages at reclaim once their goal is reached', () => {
    const [survivor, leaver] = handles(true);
    const { emptied, other, live } = emptyFirstPage(leaver);
    // Remote frees empty the second page; its owner sees it only when it abandons the page.
    for (const block of live) survivor.free(block);
    flushRemoteFrees(survivor);
    open.splice(open.indexOf(leaver), 1);
    leaver.detach();
    expect(heapReport(survivor).pages.held).toBe(2);
    survivor.check();
    survivor.quiescent();
    collect(survivor, true);
    expect(heldCount(survivor)).toBe(0);
    for (const page of [emptied, other]) expect(word(survivor, page, PG_FLAGS) & PAGE_IN_USE).toBe(0);
    expect(heapReport(survivor).segments.small).toBe(0);
    survivor.check();
  });

  it('keeps every invariant under a random mix of sizes, local and remote frees and quiescent points', () => {
    const [first, second] = handles(true);
    const sides = [first, second];
    const live: { block: number; side: number }[] = [];
    let seed = 12345;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const sizes = [16, 48, 256, 1024, 3000, 20_000, 100_000];
    for (let step = 0; step < 6000; step++) {
      const side = random(2);
      const action = random(10);
      if (action < 5 || live.length === 0) {
        const block = sides[side]!.malloc(sizes[random(sizes.length)]!);
        if (block !== 0) live.push({ block, side });
      } else if (action < 9) {
        const [entry] = live.splice(random(live.length), 1);
        sides[random(2)]!.free(entry!.block);
      } else {
        sides[side]!.quiescent();
        if (random(4) === 0) collect(sides[side]!, random(2) === 0);
      }
      if (step % 500 === 0) first.check();
    }
    for (const { block } of live) first.free(block);
    // Both threads' buffered remote frees go to their pages.
    flushRemoteFrees(first);
    flushRemoteFrees(second);
    // Collecting the remote frees empties pages now: they are held with new goals, which a
    // second round of quiescent points lets the next collect release.
    for (let round = 0; round < 2; round++) {
      first.quiescent();
      second.quiescent();
      collect(second, true);
      collect(first, true);
      first.check();
    }
    expect(heldCount(first)).toBe(0);
    expect(heapReport(first).usedBytes).toBe(0);
  });
});
