/**
 * The slab backend's refill runs (`allocateRun`) against its own structure: which objects a
 * run takes (whole line groups of one slab, or up to the slab's last object), where it
 * finds them (a partial slab's free group before a new slab), and what it does to the
 * slab's lists and the counters. The promise itself is the kit's suite (refill-runs.test.ts);
 * here the same runs are made in checked mode too, where every run verifies its slab.
 */

import { MIN_ALIGN, RUN_LINE_BYTES } from '@heaplab/core/backend';
import { BackendFixture, expectAllocError, expectRunHolds, takeRun } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { slabBackend } from '../src/index.js';
import { SH_FREE, SH_NEXT, SH_TAG } from '../src/layout.js';
import { CLASS_HEADER_OFFSET, CLASS_OBJECTS, CLASS_RUN_GROUP, CLASS_SIZE, classOf } from '../src/size-classes.js';
import type { SlabAllocator } from '../src/slab.js';
import { listCounts, MiB, PAGE, pageOwner } from './harness.js';

/** A formatted slab backend over `arenaBytes`, in checked mode or not. */
function slabHeap(checked: boolean, arenaBytes = 4 * MiB): SlabAllocator {
  return new BackendFixture(slabBackend, {}, { arenaBytes, checked }).init().backend;
}

/** Allocates one whole slab of `size`'s class (objects 0 to n - 1 in order, on a fresh class). */
function fillSlab(slab: SlabAllocator, size: number): number[] {
  return Array.from({ length: CLASS_OBJECTS[classOf(size)]! }, () => slab.allocate(size, MIN_ALIGN));
}

/** Expects `blocks` to be objects `from`, `from + 1`, ... of the slab holding `slabStart`, of `size`'s class. */
function expectObjects(slab: SlabAllocator, blocks: readonly number[], slabStart: number, size: number, from: number): void {
  const objectSize = CLASS_SIZE[classOf(size)]!;
  expect(blocks).toEqual(Array.from({ length: blocks.length }, (_, index) => slabStart + (from + index) * objectSize));
  for (const block of blocks) expect(pageOwner(slab, block).start).toBe(slabStart);
}

for (const checked of [false, true]) {
  describe(`slab refill runs${checked ? ' (checked mode)' : ''}`, () => {
    it('every cache size: whole groups from the first object of a new slab, never more than asked, none below one group', () => {
      for (let size = 8; size <= 1024; size += 8) {
        const cls = classOf(size);
        const group = CLASS_RUN_GROUP[cls]!;
        const objectSize = CLASS_SIZE[cls]!;
        // A group is the fewest objects from a line that end on one.
        expect((group * objectSize) % RUN_LINE_BYTES, `group of class ${objectSize}`).toBe(0);
        if (group > 1) expect(((group >>> 1) * objectSize) % RUN_LINE_BYTES).not.toBe(0);
        const slab = slabHeap(checked, MiB);
        if (group > 1) {
          expect(
            slab.allocateRun(size, group - 1, () => expect.unreachable('a run below one group')),
            `size ${size}`,
          ).toBe(0);
          expect(slab.usedBytes()).toBe(0);
        }
        let made = 0;
        for (const count of [group, 3 * group + 1]) {
          const blocks = takeRun(slab, size, count);
          const expected = Math.min(CLASS_OBJECTS[cls]! - made, count - (count % group));
          expect(blocks.length, `a run of ${count} ${size}-byte blocks`).toBe(expected);
          expectRunHolds(slab, blocks, size);
          // The second run goes on where the first ended, in the same slab.
          expectObjects(slab, blocks, pageOwner(slab, blocks[0]!).start, size, made);
          made += expected;
          expect(slab.usedBytes()).toBe(made * objectSize);
          expect(slab.stats().liveBlocks).toBe(made);
        }
        expect(listCounts(slab, cls)).toEqual({ partial: 1, full: 0, empty: 0 });
        slab.check();
      }
    });

    it('takes a free group of a partial slab before a new slab, and the slab back to the full list when it fills it', () => {
      const slab = slabHeap(checked);
      const cls = classOf(24);
      const objects = fillSlab(slab, 24);
      const start = pageOwner(slab, objects[0]!).start;
      expect(listCounts(slab, cls)).toEqual({ partial: 0, full: 1, empty: 0 });
      // One whole group (objects 8 to 15) freed: the run takes it, and the slab is full again.
      for (let index = 8; index < 16; index++) slab.release(objects[index]!);
      expect(listCounts(slab, cls)).toEqual({ partial: 1, full: 0, empty: 0 });
      expectObjects(slab, takeRun(slab, 24, 21), start, 24, 8);
      expect(listCounts(slab, cls)).toEqual({ partial: 0, full: 1, empty: 0 });
      // Two whole groups (objects 16 to 31) and one object of another (40): 17 free.
      for (let index = 16; index < 32; index++) slab.release(objects[index]!);
      slab.release(objects[40]!);
      const blocks = takeRun(slab, 24, 21);
      expectObjects(slab, blocks, start, 24, 16);
      expectRunHolds(slab, blocks, 24);
      expect(listCounts(slab, cls)).toEqual({ partial: 1, full: 0, empty: 0 });
      // Object 40 is no whole group: the next run is a new slab's, the old one stays partial.
      const next = takeRun(slab, 24, 21);
      expect(next.length).toBe(16);
      expect(pageOwner(slab, next[0]!).start).not.toBe(start);
      expectObjects(slab, next, pageOwner(slab, next[0]!).start, 24, 0);
      expect(listCounts(slab, cls)).toEqual({ partial: 2, full: 0, empty: 0 });
      // The new slab filled but for its last object, which is no whole group: a group freed
      // in the old slab, behind it on the list, is found there.
      for (let index = 16; index < CLASS_OBJECTS[cls]! - 1; index++) slab.allocate(24, MIN_ALIGN);
      for (const block of blocks.slice(8)) slab.release(block);
      expectObjects(slab, takeRun(slab, 24, 21), start, 24, 24);
      expect(listCounts(slab, cls)).toEqual({ partial: 2, full: 0, empty: 0 });
      slab.check();
      expect(slab.stats().liveBlocks).toBe(2 * (CLASS_OBJECTS[cls]! - 1));
    });

    it('cuts a run back to whole groups, unless it reaches the last object before the header', () => {
      const slab = slabHeap(checked);
      const cls = classOf(8);
      const last = CLASS_OBJECTS[cls]! - 1;
      // The 8-byte class: groups of 8 objects, and a short last group before the header.
      expect(CLASS_OBJECTS[cls]! % CLASS_RUN_GROUP[cls]!).not.toBe(0);
      const objects = fillSlab(slab, 8);
      const start = pageOwner(slab, objects[0]!).start;
      const tail = last - (last % 8);
      // A whole group and the short last one: the run ends at the header.
      for (let index = tail - 8; index <= last; index++) slab.release(objects[index]!);
      const toHeader = takeRun(slab, 8, 64);
      expectObjects(slab, toHeader, start, 8, tail - 8);
      expect(toHeader[toHeader.length - 1]! + 8).toBe(start + CLASS_HEADER_OFFSET[cls]!);
      expectRunHolds(slab, toHeader, 8);
      expect(listCounts(slab, cls)).toEqual({ partial: 0, full: 1, empty: 0 });
      // A whole group and part of the next: only the whole group.
      for (let index = 16; index < 31; index++) slab.release(objects[index]!);
      const cut = takeRun(slab, 8, 64);
      expectObjects(slab, cut, start, 8, 16);
      expect(cut.length).toBe(8);
      // Fewer asked than the free groups hold: whole groups up to the count.
      for (let index = 64; index < 96; index++) slab.release(objects[index]!);
      expectObjects(slab, takeRun(slab, 8, 20), start, 8, 64);
      slab.check();
    });

    it('makes no run when no whole group is free and no slab can be had, leaving the holes to allocate', () => {
      const slab = slabHeap(checked, MiB);
      const blocks: number[] = [];
      for (let block = slab.allocate(8, MIN_ALIGN); block !== 0; block = slab.allocate(8, MIN_ALIGN)) blocks.push(block);
      expect(slab.pages.availablePages()).toBe(0);
      // Every other object freed: each group of 8 keeps 4 live.
      for (let index = 1; index < blocks.length; index += 2) slab.release(blocks[index]!);
      const used = slab.usedBytes();
      expect(slab.allocateRun(8, 64, () => expect.unreachable('a run without a whole free group'))).toBe(0);
      expect(slab.usedBytes()).toBe(used);
      expect(slab.allocate(8, MIN_ALIGN)).not.toBe(0);
      slab.check();
    });

    it('reports a damaged partial slab it meets, and carves nothing', () => {
      const slab = slabHeap(checked);
      const cls = classOf(64);
      const objects = fillSlab(slab, 64);
      slab.release(objects[5]!);
      const start = pageOwner(slab, objects[0]!).start;
      const used = slab.usedBytes();
      const tagWord = ((start + CLASS_HEADER_OFFSET[cls]!) >>> 2) + (SH_TAG >>> 2);
      slab.u32[tagWord] = slab.u32[tagWord]! ^ 0x40;
      expectAllocError(() => slab.allocateRun(64, 8, () => expect.unreachable('a block of a damaged slab')), 'HeapCorrupted');
      expect(slab.usedBytes()).toBe(used);
    });

    it('reports a damaged link on its way down the partial list, and a bitmap with more free objects than the count', () => {
      for (const link of [PAGE * 3, 0x1234_5678]) {
        const slab = slabHeap(checked);
        const cls = classOf(24);
        const objects = fillSlab(slab, 24);
        // Object 40 alone is free: no whole group, so the search follows the slab's next link.
        slab.release(objects[40]!);
        const header = (pageOwner(slab, objects[0]!).start + CLASS_HEADER_OFFSET[cls]!) >>> 2;
        slab.u32[header + (SH_NEXT >>> 2)] = pageOwner(slab, objects[0]!).start + link;
        const used = slab.usedBytes();
        expectAllocError(() => slab.allocateRun(24, 21, () => expect.unreachable('a block past a damaged link')), 'HeapCorrupted');
        expect(slab.usedBytes()).toBe(used);
      }
      const slab = slabHeap(checked);
      const cls = classOf(24);
      const objects = fillSlab(slab, 24);
      // Two groups free (objects 8 to 23), and a count that says 9.
      for (let index = 8; index < 24; index++) slab.release(objects[index]!);
      const header = (pageOwner(slab, objects[0]!).start + CLASS_HEADER_OFFSET[cls]!) >>> 2;
      slab.u32[header + (SH_FREE >>> 2)] = 9;
      const used = slab.usedBytes();
      expectAllocError(() => slab.allocateRun(24, 21, () => expect.unreachable('a block of a miscounted slab')), 'HeapCorrupted');
      expect(slab.usedBytes()).toBe(used);
    });
  });
}
