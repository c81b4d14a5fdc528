/**
 * Damaged free-block words (an overflow past a block, a write after free): the test kit's
 * suite, then the damage each check exists for, one at a time. A link is followed, written
 * through or handed out only once it names a free block of its list's order; an operation
 * that finds one that does not raises HeapCorrupted before its first store.
 */

import { type AllocError, MiB } from '@heaplab/core';
import { BackendFixture, describeCorruptionDetection, expectAllocError } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { type BuddyAllocator, buddyBackend } from '../src/index.js';
import { FB_MAP_START, FB_NEXT, FB_PREV } from '../src/layout.js';

describeCorruptionDetection({ label: 'buddy', backend: buddyBackend });

const ARENA_START = 4 * MiB;

/**
 * A heap with eight 1 KiB blocks side by side from 0x440000 and the odd ones but the last
 * freed: list 10 holds a[5] -> a[3] -> a[1], each with a live buddy below it.
 */
function heapWithList(checked = false): { buddy: BuddyAllocator; a: number[]; u32: Uint32Array; u8: Uint8Array } {
  const fixture = new BackendFixture(buddyBackend, {}, { arenaBytes: 4 * MiB, checked }).init(ARENA_START, 4 * MiB);
  const { backend: buddy, context } = fixture;
  const a = Array.from({ length: 8 }, () => buddy.allocate(1000, 8));
  expect(a.map((address) => address - a[0]!)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => i * 1024));
  for (const i of [1, 3, 5]) buddy.release(a[i]!);
  expect(buddy.blocks.lists.head(10)).toBe(a[5]);
  buddy.check();
  return { buddy, a, u32: context.memory.u32, u8: context.memory.u8 };
}

/** Runs `action`, expects HeapCorrupted, and expects no byte of the buffer to have changed. */
function expectReportedUnchanged(u8: Uint8Array, action: () => unknown): AllocError {
  const before = u8.slice();
  const error = expectAllocError(action, 'HeapCorrupted');
  const changed = u8.findIndex((byte, at) => byte !== before[at]);
  expect(changed, `byte ${changed} changed`).toBe(-1);
  return error;
}

describe('buddy: damaged free-list links', () => {
  it("does not follow a head's next link into a live block, even one whose bytes look like a free block", () => {
    const { buddy, a, u32, u8 } = heapWithList();
    // a[0] is live; its user data happens to hold its pool's map start where a free block's would be.
    u32[(a[0]! + FB_MAP_START) >>> 2] = ARENA_START;
    u32[(a[5]! + FB_NEXT) >>> 2] = a[0]!;
    const error = expectReportedUnchanged(u8, () => buddy.allocate(1000, 8));
    expect(error.message).toContain('next link 0x440000');
    expectAllocError(() => buddy.check(), 'HeapCorrupted');
  });

  it('does not hand out a head whose own words were overwritten after it was freed', () => {
    const { buddy, a, u32, u8 } = heapWithList();
    u32[(a[5]! + FB_MAP_START) >>> 2] = 0xdeadbee0;
    expectReportedUnchanged(u8, () => buddy.allocate(1000, 8));
  });

  it('does not merge through a buddy whose previous link is garbage, and the freed block stays live', () => {
    const { buddy, a, u32, u8 } = heapWithList();
    u32[(a[5]! + FB_PREV) >>> 2] = 0x12345670;
    expectReportedUnchanged(u8, () => buddy.release(a[4]!));
    expect(buddy.usableSize(a[4]!)).toBe(1024);
  });

  it('does not unlink a block that claims to head its list but does not', () => {
    const { buddy, a, u32, u8 } = heapWithList();
    u32[(a[3]! + FB_PREV) >>> 2] = 0;
    const error = expectReportedUnchanged(u8, () => buddy.release(a[2]!));
    expect(error.message).toContain('not the list head');
  });

  it('does not grow in place over a buddy whose next link leaves the arena', () => {
    const { buddy, a, u32, u8 } = heapWithList();
    u32[(a[1]! + FB_NEXT) >>> 2] = 0xfffffc00;
    expectReportedUnchanged(u8, () => buddy.resizeInPlace(a[0]!, 2000));
  });

  it('hands a block out once when its next link points back at itself', () => {
    const { buddy, a, u32 } = heapWithList();
    u32[(a[5]! + FB_NEXT) >>> 2] = a[5]!;
    expect(buddy.allocate(1000, 8)).toBe(a[5]);
    // The list head is now the block just handed out: the next allocation refuses it.
    const error = expectAllocError(() => buddy.allocate(1000, 8), 'HeapCorrupted');
    expect(error.message).toContain('head');
  });

  it('reports a two-block cycle from check() without looping', () => {
    const { buddy, a, u32 } = heapWithList();
    u32[(a[3]! + FB_NEXT) >>> 2] = a[5]!;
    expect(expectAllocError(() => buddy.check(), 'HeapCorrupted').message).toMatch(/longer than|previous link/);
  });
});
