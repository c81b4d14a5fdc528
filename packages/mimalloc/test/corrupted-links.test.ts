/**
 * Every list walk is bounded and every link is checked before it is followed or a block is
 * handed out (issue #12), in the default mode: the free list popped by the malloc fast
 * path, thread_free, the delayed list, the abandoned list and the page queues. A corrupted
 * link is reported as HeapCorrupted; no address outside its page is ever handed out, and no
 * walk loops. A segment header's first bytes, which an overflow of the block before them
 * reaches, are not trusted.
 */

import { afterEach, describe, expect, it } from 'vitest';

import { type GlobalAllocator, MiB } from '@heaplab/core';
import { expectAllocError } from '@heaplab/test-kit';

import { collect, flushRemoteFrees, mimallocOf } from '../src/index.js';
import { queueOf } from '../src/page-queue.js';
import { pageDescriptor } from '../src/internal.js';
import { binOfSize } from '../src/size-classes.js';
import {
  HP_DELAYED_FREE,
  PG_NEXT,
  PG_USED,
  QUEUE_FIRST,
  SEGMENT_BYTES,
  SG_KIND,
  SG_NEXT,
  SG_PAGE_COUNT,
  ST_ABANDONED,
  USE_DELAYED_FREE,
} from '../src/layout.js';
import { delayedState, pageOf, twoHandles } from './helpers.js';

const open: GlobalAllocator[] = [];
afterEach(() => {
  for (const heap of open.splice(0)) {
    try {
      heap.detach();
    } catch {
      // a corrupted heap may refuse its detach; the test is over
    }
  }
});

/** Two handles on a heap in the default mode (checked mode reports the same damage earlier). */
function pair(): [GlobalAllocator, GlobalAllocator] {
  const handles = twoHandles({}, 16 * MiB, false);
  open.push(...handles);
  return handles;
}

describe('corrupted links in the default mode', () => {
  it('malloc never hands out a free-list link that leaves the page', () => {
    for (const target of ['outside the arena', 'another page', 'past the extended blocks', 'off the grid'] as const) {
      const [heap] = pair();
      const blocks = Array.from({ length: 8 }, () => heap.malloc(64));
      // An overflow of the last block into the next one, which heads the free list: its link
      // now names an address outside the arena, another page of the segment, a block of the
      // page not yet extended, or the inside of a block.
      const head = blocks[7]! + 64;
      const page = pageOf(heap, head);
      const bad = {
        'outside the arena': 0x7ffffff8,
        'another page': page - (page % SEGMENT_BYTES) + 3 * 65536,
        'past the extended blocks': blocks[0]! + 64 * 64,
        'off the grid': blocks[2]! + 8,
      }[target];
      heap.memory.u32[head >>> 2] = bad;
      if (target === 'off the grid') {
        // Inside the extended blocks: the fast path's one compare lets it through, and
        // check() (or checked mode's pop, see checked-mode.test.ts) reports it.
        expect(heap.malloc(64), target).toBe(head);
        expectAllocError(() => heap.check(), 'HeapCorrupted');
        continue;
      }
      // The pop that would make the bad link the next block refuses, and leaves the list.
      expectAllocError(() => heap.malloc(64), 'HeapCorrupted');
      expectAllocError(() => heap.malloc(64), 'HeapCorrupted');
    }
  });

  it('a collect refuses a thread_free link that leaves the page, and a cycle', () => {
    for (const damage of ['outside', 'cycle'] as const) {
      const [owner, other] = pair();
      const blocks = Array.from({ length: 100 }, () => owner.malloc(64));
      other.free(blocks[10]!);
      other.free(blocks[20]!);
      flushRemoteFrees(other);
      // blocks[20] heads thread_free and links to blocks[10].
      owner.memory.u32[blocks[10]! >>> 2] = damage === 'outside' ? 0x7ffffff8 : blocks[20]!;
      expectAllocError(() => collect(owner), 'HeapCorrupted');
    }
  });

  /** An owner with a full first page whose first block another thread freed (delayed list). */
  function delayedBlock(): { owner: GlobalAllocator; other: GlobalAllocator; blocks: number[] } {
    const [owner, other] = pair();
    const blocks = Array.from({ length: 1100 }, () => owner.malloc(64));
    expect(delayedState(owner, blocks[0]!)).toBe(USE_DELAYED_FREE);
    other.free(blocks[0]!);
    flushRemoteFrees(other);
    expect(Atomics.load(owner.memory.u32, (mimallocOf(owner).context.heap + HP_DELAYED_FREE) >>> 2)).toBe(blocks[0]);
    return { owner, other, blocks };
  }

  it('a drain refuses a delayed-list link that is no freed block, and a cycle, before it frees anything', () => {
    const { owner, blocks } = delayedBlock();
    owner.memory.u32[blocks[0]! >>> 2] = blocks[500]!;
    expectAllocError(() => collect(owner), 'HeapCorrupted');
    const second = delayedBlock();
    // A cycle of two blocks: a drain that followed it would free blocks twice.
    second.other.free(second.blocks[1]!);
    flushRemoteFrees(second.other);
    const head = Atomics.load(second.owner.memory.u32, (mimallocOf(second.owner).context.heap + HP_DELAYED_FREE) >>> 2);
    expect(head).toBe(second.blocks[0]);
    second.owner.memory.u32[second.blocks[0]! >>> 2] = second.blocks[0]!;
    const usedWord = (pageOf(second.owner, second.blocks[0]!) + PG_USED) >>> 2;
    const used = second.owner.memory.u32[usedWord];
    expectAllocError(() => collect(second.owner), 'HeapCorrupted');
    expect(second.owner.memory.u32[usedWord], 'no block of the page was freed').toBe(used);
  });

  it('a reclaim refuses an abandoned-list link that is no abandoned segment', () => {
    const [main, leaver] = pair();
    leaver.malloc(200);
    open.splice(open.indexOf(leaver), 1);
    leaver.detach();
    const context = mimallocOf(main).context;
    const first = main.memory.u32[(context.state + ST_ABANDONED) >>> 2]!;
    expect(first).not.toBe(0);
    main.memory.u32[(first + SG_NEXT) >>> 2] = first + SEGMENT_BYTES * 2;
    expectAllocError(() => main.malloc(200), 'HeapCorrupted');
  });

  it('a page-queue walk refuses a link that is no page in use', () => {
    const [heap] = pair();
    const blocks = Array.from({ length: 1100 }, () => heap.malloc(64));
    const context = mimallocOf(heap).context;
    const first = heap.memory.u32[(queueOf(context.heap, binOfSize(64)) + QUEUE_FIRST) >>> 2]!;
    // The link names the descriptor of a page slot that is not in use (the segment's last).
    const segment = first - (first % SEGMENT_BYTES);
    heap.memory.u32[(first + PG_NEXT) >>> 2] = pageDescriptor(segment, 63);
    expectAllocError(() => collect(heap), 'HeapCorrupted');
    expect(blocks.length).toBe(1100);
  });

  it('a segment header overwritten by an overflow does not change what frees and mallocs do', () => {
    const [heap] = pair();
    // A full segment of 64 KiB pages: its pages empty and fill again below, which moves it
    // on and off its owner's list of segments with a free page slot.
    const blocks = Array.from({ length: 1400 }, () => heap.malloc(3000));
    const segment = blocks[0]! - (blocks[0]! % SEGMENT_BYTES);
    // The overflow of the block before the segment reaches its first 16 bytes.
    const kind = heap.memory.u32[(segment + SG_KIND) >>> 2]!;
    const count = heap.memory.u32[(segment + SG_PAGE_COUNT) >>> 2]!;
    heap.memory.u32[(segment + SG_KIND) >>> 2] = 0xdeadbeef;
    heap.memory.u32[(segment + SG_PAGE_COUNT) >>> 2] = 0x7fffffff;
    for (const block of blocks) heap.free(block);
    const again = Array.from({ length: 1400 }, () => heap.malloc(3000));
    for (const block of again.slice(700)) heap.free(block);
    // Once the program's bug is undone, the lists the allocator kept meanwhile are sound.
    heap.memory.u32[(segment + SG_KIND) >>> 2] = kind;
    heap.memory.u32[(segment + SG_PAGE_COUNT) >>> 2] = count;
    heap.check();
    for (const block of again.slice(0, 700)) heap.free(block);
    collect(heap, true);
    expect(heap.usedBytes()).toBe(0);
    heap.check();
  });
});
