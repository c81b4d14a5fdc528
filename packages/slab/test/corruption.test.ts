/**
 * Damaged slab metadata is reported, never looped on, never turned into an address outside
 * the arena. The kit's suite damages the heap as buggy programs do (it rarely reaches a slab
 * header, which sits after a slab's last object); the cases below damage each structure
 * directly: a slab header's tag, free count, hint, bitmap and links, a class list head, and
 * page-map words. Each must make the operation that meets it raise `HeapCorrupted` (or be
 * refused as `NotAllocated` where the damage makes an address no block), and `check()` must
 * name it; no other block may change.
 */

import { AllocError, MIN_ALIGN, PAGE_SIZE } from '@heaplab/core';
import { describeCorruptionDetection, expectAllocError, Random, signBlock, type Signature, verifyBlock } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { slabBackend } from '../src/index.js';
import { CLASS_BITMAP_WORDS, CLASS_COUNT, CLASS_OBJECTS, classOf } from '../src/size-classes.js';
import {
  CL_COUNT,
  CL_HEAD,
  CLASS_RECORD_WORDS,
  OWNER_CLASS_SHIFT,
  PAGE_ENTRY_WORDS,
  PAGE_FREE,
  PM_RUN_PAGES,
  SH_BITMAP,
  SH_FREE,
  SH_HINT,
  SH_NEXT,
  SH_PREV,
  SH_TAG,
  SlabList,
} from '../src/layout.js';
import { headerWord, makeSlab, MiB, pageOwner } from './harness.js';

describeCorruptionDetection({ label: 'slab', backend: slabBackend });

const SIZE = 96;
const CLS = classOf(SIZE);
const OBJECTS = CLASS_OBJECTS[CLS]!;

/** A heap with two full slabs and a partial one of the 96-byte class, a cached empty one of the 40-byte class and a run, all signed. */
function damageable(emptySlabs = 1) {
  const { slab, ctx } = makeSlab({ emptySlabs }, 4 * MiB);
  const u8 = ctx.memory.u8;
  let sequence = 0;
  const held = new Map<number, Signature>();
  const take = (size: number, align = MIN_ALIGN): number => {
    const address = slab.allocate(size, align);
    const signature = { writer: 6, sequence: sequence++, size };
    signBlock(u8, address, signature);
    held.set(address, signature);
    return address;
  };
  const objects = Array.from({ length: 2 * OBJECTS + 5 }, () => take(SIZE));
  const cached = Array.from({ length: CLASS_OBJECTS[classOf(40)]! }, () => slab.allocate(40, MIN_ALIGN));
  for (const address of cached) slab.release(address);
  const run = take(7 * PAGE_SIZE);
  slab.check();
  const partial = slab.caches.lists.head(CLS, SlabList.partial);
  const fullHead = slab.caches.lists.head(CLS, SlabList.full);
  const fullSecond = slab.u32[headerWord(fullHead, CLS) + (SH_NEXT >>> 2)]!;
  return {
    slab,
    objects,
    run,
    partial,
    fullHead,
    fullSecond,
    /** Word index of field `field` of the header of `start`. */
    field: (start: number, field: number) => headerWord(start, CLS) + (field >>> 2),
    /** An object of slab `start`. */
    objectOf: (start: number) => objects.find((address) => pageOwner(slab, address).start === start)!,
    /** Every held block the damage did not touch is intact. */
    intact: (except: (address: number) => boolean = () => false) => {
      for (const [address, signature] of held) {
        if (!except(address)) expect(verifyBlock(u8, address, signature), `block ${address}`).toBeNull();
      }
    },
    /** Allocations after the damage stay in the arena, or fail with an AllocError. */
    allocationsStayInside: () => {
      const random = new Random(5);
      for (let i = 0; i < 200; i++) {
        let address: number;
        try {
          address = slab.allocate(random.int(0, 20_000), MIN_ALIGN);
        } catch (error) {
          expect(error).toBeInstanceOf(AllocError);
          continue;
        }
        if (address !== 0) {
          expect(address).toBeGreaterThanOrEqual(slab.arenaStart);
          expect(address).toBeLessThan(slab.arenaEnd);
        }
      }
    },
  };
}

/** Expects `action` to raise HeapCorrupted with a message containing `names`. */
function expectCorrupted(action: () => unknown, names: string | RegExp): void {
  const error = expectAllocError(action, 'HeapCorrupted');
  expect(error.message).toMatch(names);
}

describe('slab: damaged metadata is reported by the operation that meets it', () => {
  it('a slab header whose tag is overwritten (an overflow of its last object)', () => {
    const heap = damageable();
    heap.slab.u32[heap.field(heap.partial, SH_TAG)] ^= 0xff;
    expectCorrupted(() => heap.slab.allocate(SIZE, MIN_ALIGN), /damaged|tag/);
    expectCorrupted(() => heap.slab.release(heap.objectOf(heap.partial)), /tag/);
    expectCorrupted(() => heap.slab.usableSize(heap.objectOf(heap.partial)), /tag/);
    expectCorrupted(() => heap.slab.check(), /tag/);
    heap.intact();
  });

  it('a free count out of range, and one that is merely wrong', () => {
    for (const [start, value, operation] of [
      ['partial', 0, 'allocate'],
      ['partial', OBJECTS + 1, 'allocate'],
      ['fullHead', OBJECTS, 'release'],
    ] as const) {
      const heap = damageable();
      const slab = heap[start];
      heap.slab.u32[heap.field(slab, SH_FREE)] = value;
      expectCorrupted(() => (operation === 'allocate' ? heap.slab.allocate(SIZE, MIN_ALIGN) : heap.slab.release(heap.objectOf(slab))), /free count/);
      expectCorrupted(() => heap.slab.check(), /free count/);
      heap.intact();
    }
    // Within range but wrong: the operations cannot tell without a recount; check() can.
    const heap = damageable();
    heap.slab.u32[heap.field(heap.partial, SH_FREE)]! += 1;
    expectCorrupted(() => heap.slab.check(), /free count/);
  });

  it('a bitmap with no free bit, one with bits past the last object, and a hint past the bitmap', () => {
    const words = CLASS_BITMAP_WORDS[CLS]!;
    const cases: [string, (heap: ReturnType<typeof damageable>) => void][] = [
      ['no free bit', (heap) => heap.slab.u32.fill(0, heap.field(heap.partial, SH_BITMAP), heap.field(heap.partial, SH_BITMAP) + words)],
      [
        'bits past the last object',
        (heap) => {
          heap.slab.u32.fill(0, heap.field(heap.partial, SH_BITMAP), heap.field(heap.partial, SH_BITMAP) + words);
          heap.slab.u32[heap.field(heap.partial, SH_BITMAP) + words - 1] = 0x8000_0000;
        },
      ],
      ['a hint past the bitmap', (heap) => (heap.slab.u32[heap.field(heap.partial, SH_HINT)] = 0x7fff_ffff)],
    ];
    for (const [what, damage] of cases) {
      const heap = damageable();
      damage(heap);
      expectCorrupted(() => heap.slab.allocate(SIZE, MIN_ALIGN), /no free object/);
      expectAllocError(() => heap.slab.check(), 'HeapCorrupted');
      heap.allocationsStayInside();
      heap.intact();
      expect(what).toBeTruthy();
    }
  });

  it('a class list head that names no slab of the class', () => {
    const other = makeSlab().slab;
    const foreign = other.caches.lists.head(CLS, SlabList.partial);
    for (const value of [0x1234_5678, 0xffff_f000, 8, 0, foreign]) {
      const heap = damageable();
      const headWord = heap.slab.sClasses + CLS * CLASS_RECORD_WORDS + (CL_HEAD >>> 2) + SlabList.partial;
      // A slab of another class, a stale (freed) address, outside the arena, unaligned, none.
      const target = value === 0 ? heap.fullHead : value === foreign ? heap.slab.caches.lists.head(classOf(40), SlabList.empty) : value;
      heap.slab.u32[headWord] = target;
      expectCorrupted(() => heap.slab.allocate(SIZE, MIN_ALIGN), /partial list|next link|previous link/);
      expectAllocError(() => heap.slab.check(), 'HeapCorrupted');
      heap.allocationsStayInside();
      heap.intact();
    }
  });

  it('a list head that names a slab of the same class already given back (its tag was retired)', () => {
    const { slab } = makeSlab({ emptySlabs: 0 }, 4 * MiB);
    const first = Array.from({ length: OBJECTS }, () => slab.allocate(SIZE, MIN_ALIGN));
    const second = Array.from({ length: OBJECTS }, () => slab.allocate(SIZE, MIN_ALIGN));
    const stale = pageOwner(slab, second[0]!).start;
    for (const address of second) slab.release(address);
    expect(pageOwner(slab, stale).kind).toBe(PAGE_FREE);
    slab.release(first[0]!);
    // The given-back slab's header is whole but for its tag: all objects free, right class.
    slab.u32[slab.sClasses + CLS * CLASS_RECORD_WORDS + (CL_HEAD >>> 2) + SlabList.partial] = stale;
    expectCorrupted(() => slab.allocate(SIZE, MIN_ALIGN), /partial list/);
    expectAllocError(() => slab.check(), 'HeapCorrupted');
  });

  it('list links that name another slab, no slab, or the slab itself', () => {
    for (const [what, damage, operation] of [
      ['a next link to no slab', (heap: ReturnType<typeof damageable>) => (heap.slab.u32[heap.field(heap.fullHead, SH_NEXT)] = heap.run), 'release'],
      ['a next link to itself', (heap: ReturnType<typeof damageable>) => (heap.slab.u32[heap.field(heap.fullHead, SH_NEXT)] = heap.fullHead), 'release'],
      [
        'a previous link to no slab',
        (heap: ReturnType<typeof damageable>) => (heap.slab.u32[heap.field(heap.fullSecond, SH_PREV)] = heap.run),
        'release-second',
      ],
      ['a previous link on the head', (heap: ReturnType<typeof damageable>) => (heap.slab.u32[heap.field(heap.partial, SH_PREV)] = heap.fullHead), 'fill'],
    ] as const) {
      const heap = damageable();
      damage(heap);
      expectCorrupted(() => {
        if (operation === 'release') heap.slab.release(heap.objectOf(heap.fullHead));
        else if (operation === 'release-second') heap.slab.release(heap.objectOf(heap.fullSecond));
        else for (let i = 0; i < OBJECTS; i++) heap.slab.allocate(SIZE, MIN_ALIGN);
      }, /link/);
      expectAllocError(() => heap.slab.check(), 'HeapCorrupted');
      heap.intact();
      expect(what).toBeTruthy();
    }
  });

  it('an empty list whose length word or links are broken, met when its slabs are given back', () => {
    for (const damage of ['count', 'cycle'] as const) {
      const heap = damageable();
      const cls = classOf(40);
      const record = heap.slab.sClasses + cls * CLASS_RECORD_WORDS;
      const cached = heap.slab.caches.lists.head(cls, SlabList.empty);
      if (damage === 'count') heap.slab.u32[record + (CL_COUNT >>> 2) + SlabList.empty] = 5;
      else heap.slab.u32[headerWord(cached, cls) + (SH_NEXT >>> 2)] = cached;
      // A run that needs every page, cached ones included: the empty lists are walked.
      expectCorrupted(() => heap.slab.allocate(heap.slab.pages.availablePages() * PAGE_SIZE + PAGE_SIZE, MIN_ALIGN), /empty list|link/);
      expectAllocError(() => heap.slab.check(), 'HeapCorrupted');
      heap.intact();
    }
  });

  it('page-map words: an object page naming another slab or an unknown class, and run lengths that do not fit', () => {
    const entry = (heap: ReturnType<typeof damageable>, address: number) => heap.slab.map.word + ((address - heap.slab.arenaStart) >>> 12) * PAGE_ENTRY_WORDS;
    {
      // The object's page names the full slab before it: the object is not at an object
      // boundary of that slab, or that slab's page disagrees.
      const heap = damageable();
      const victim = heap.objectOf(heap.partial);
      heap.slab.u32[entry(heap, victim)] = heap.slab.u32[entry(heap, heap.fullHead)]!;
      expect(() => heap.slab.release(victim)).toThrow(AllocError);
      expectAllocError(() => heap.slab.check(), 'HeapCorrupted');
      heap.intact();
    }
    {
      const heap = damageable();
      const victim = heap.objectOf(heap.partial);
      heap.slab.u32[entry(heap, victim)] = heap.partial + ((CLASS_COUNT + 3) << OWNER_CLASS_SHIFT) + 3;
      expectCorrupted(() => heap.slab.release(victim), /unknown class/);
      expectCorrupted(() => heap.slab.usableSize(victim), /unknown class/);
      expectCorrupted(() => heap.slab.check(), /class/);
    }
    for (const length of [0, 6, 8, 0x10_0000, 0xffff_ffff]) {
      const heap = damageable();
      heap.slab.u32[entry(heap, heap.run) + (PM_RUN_PAGES >>> 2)] = length;
      expectCorrupted(() => heap.slab.usableSize(heap.run), /length/);
      expectCorrupted(() => heap.slab.release(heap.run), /length/);
      expectCorrupted(() => heap.slab.resizeInPlace(heap.run, 20 * PAGE_SIZE), /length/);
      expectAllocError(() => heap.slab.check(), 'HeapCorrupted');
      heap.allocationsStayInside();
      heap.intact((address) => address === heap.run);
    }
  });
});
