/**
 * Checked mode of the slab backend: the operation that touches a damaged slab or run reports
 * it (HeapCorrupted), where the default mode, whose checks are a compare or two per link,
 * goes on until `check()` sees it. Each case runs in both modes.
 */

import { GlobalAllocator, MiB, PAGE_SIZE } from '@heaplab/core';
import { expectAllocError } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { slabBackend } from '../src/index.js';
import { CLASS_CODE_BIT_SHIFT, CLASS_CODE_INDEX_SHIFT, CLASS_CODE_WORD, CLASS_OBJECTS, classOf } from '../src/size-classes.js';
import { PAGE_ENTRY_WORDS, PAGE_LARGE, SH_BITMAP, SH_FREE, SH_PREV, SlabList } from '../src/layout.js';
import { headerWord, pageOwner } from './harness.js';

const SIZE = 160;
const CLS = classOf(SIZE);

/**
 * A heap with three slabs of the 160-byte class (two partial, one full) and a run. Without a
 * thread cache (`tcache: false`; checked mode has none anyway): the frees must reach the
 * slabs, and the default mode's run is about what the bare algorithm lets through.
 */
function heapWith(checked: boolean | undefined) {
  const heap = GlobalAllocator.create({
    backend: slabBackend,
    options: { tcache: false },
    heapBytes: 4 * MiB,
    ...(checked === undefined ? {} : { checked }),
  });
  const slab = heap.backendOf(slabBackend);
  const objects = Array.from({ length: 3 * CLASS_OBJECTS[CLS]! }, () => heap.malloc(SIZE));
  const run = heap.malloc(6 * PAGE_SIZE);
  // Free one object in each of the two later slabs: both partial, the first one full.
  heap.free(objects[CLASS_OBJECTS[CLS]! + 1]!);
  heap.free(objects[2 * CLASS_OBJECTS[CLS]! + 1]!);
  heap.check();
  const partialHead = slab.caches.lists.head(CLS, SlabList.partial);
  const partialSecond = slab.u32[headerWord(partialHead, CLS) + 3]!;
  expect(partialSecond).not.toBe(0);
  const objectOf = (start: number) => objects.find((address, i) => i % 7 === 0 && pageOwner(slab, address).start === start)!;
  return { heap, slab, objects, run, partialHead, partialSecond, objectOf, entry: (address: number) => slab.map.entryWord(address) };
}

type Setup = ReturnType<typeof heapWith>;

/**
 * Damages the heap with `damage`, then runs `operation`: in checked mode it must raise
 * HeapCorrupted naming `names`; in the default mode it goes through, and then either
 * check() reports the damage (`left`), or the operation wrote over it (`absorbed`: the
 * damage was in what the operation rewrites, so it harmed nothing).
 */
function caughtOnlyWhenChecked(damage: (setup: Setup) => void, operation: (setup: Setup) => unknown, names: RegExp, inDefaultMode: 'left' | 'absorbed'): void {
  for (const checked of [false, true]) {
    const setup = heapWith(checked);
    damage(setup);
    if (checked) {
      expect(expectAllocError(() => operation(setup), 'HeapCorrupted').message).toMatch(names);
    } else {
      operation(setup);
      if (inDefaultMode === 'left') expectAllocError(() => setup.heap.check(), 'HeapCorrupted');
      else setup.heap.check();
    }
    setup.heap.detach();
  }
}

describe('slab in checked mode', () => {
  it('reports a free count that disagrees with the bitmap, at the malloc that takes from the slab', () => {
    caughtOnlyWhenChecked(
      ({ slab, partialHead }) => void (slab.u32[headerWord(partialHead, CLS) + (SH_FREE >>> 2)]! += 1),
      ({ heap }) => heap.malloc(SIZE),
      /free count/,
      'left',
    );
  });

  it('reports a bitmap bit flipped in a full slab, at the free into it', () => {
    caughtOnlyWhenChecked(
      ({ slab, objects }) => {
        const full = pageOwner(slab, objects[0]!).start;
        expect(slab.caches.lists.head(CLS, SlabList.full)).toBe(full);
        slab.u32[headerWord(full, CLS) + (SH_BITMAP >>> 2)]! |= 1 << 3;
      },
      ({ heap, objects }) => heap.free(objects[5]!),
      /free count/,
      'left',
    );
  });

  it('reports a broken previous link of a slab in the middle of a list, at a free that moves nothing', () => {
    caughtOnlyWhenChecked(
      ({ slab, partialSecond, run }) => void (slab.u32[headerWord(partialSecond, CLS) + (SH_PREV >>> 2)] = run),
      ({ heap, objectOf, partialSecond }) => heap.free(objectOf(partialSecond)),
      /previous link/,
      'left',
    );
  });

  it('reports an alignment code left on a free object, at the malloc that would hand it out', () => {
    caughtOnlyWhenChecked(
      ({ slab, partialHead, objects }) => {
        // The free object is object 1 of the head slab; give it a code.
        const index = (objects[2 * CLASS_OBJECTS[CLS]! + 1]! - partialHead) / SIZE;
        expect(index).toBe(1);
        const word = headerWord(partialHead, CLS) + CLASS_CODE_WORD[CLS]! + (index >>> CLASS_CODE_INDEX_SHIFT[CLS]!);
        slab.u32[word]! |= 1 << ((index & ((1 << CLASS_CODE_INDEX_SHIFT[CLS]!) - 1)) << CLASS_CODE_BIT_SHIFT[CLS]!);
      },
      ({ heap }) => heap.malloc(SIZE),
      /alignment code/,
      'left',
    );
  });

  it('reports a page in the middle of a run that names another owner, at the free of the run', () => {
    caughtOnlyWhenChecked(
      ({ slab, run, entry }) => {
        expect(pageOwner(slab, run).kind).toBe(PAGE_LARGE);
        slab.u32[entry(run + 2 * PAGE_SIZE)] = run + 2 * PAGE_SIZE + PAGE_LARGE;
      },
      ({ heap, run }) => heap.free(run),
      /length/,
      'absorbed',
    );
  });

  it('reports free pages the page map holds as taken, at the malloc that gets them', () => {
    caughtOnlyWhenChecked(
      ({ slab, run, entry }) => {
        // The page after the run is free; the page map says it is part of a run.
        const next = run + 6 * PAGE_SIZE;
        expect(slab.u32[entry(next)]).toBe(1);
        slab.u32[entry(next)] = run + PAGE_LARGE;
        slab.u32[entry(next) + PAGE_ENTRY_WORDS] = run + PAGE_LARGE;
      },
      ({ heap }) => heap.malloc(2 * PAGE_SIZE),
      /page map does not hold free/,
      'absorbed',
    );
  });

  it('is chosen by HEAPLAB_CHECKED=1 when the config does not say', () => {
    const saved = process.env['HEAPLAB_CHECKED'];
    process.env['HEAPLAB_CHECKED'] = '1';
    try {
      const { heap, slab, partialHead } = heapWith(undefined);
      expect(slab.checked).toBe(true);
      slab.u32[headerWord(partialHead, CLS) + (SH_FREE >>> 2)]! += 1;
      expectAllocError(() => heap.malloc(SIZE), 'HeapCorrupted');
      heap.detach();
    } finally {
      if (saved === undefined) delete process.env['HEAPLAB_CHECKED'];
      else process.env['HEAPLAB_CHECKED'] = saved;
    }
  });

  it('runs the conformance workload without a false alarm', () => {
    const heap = GlobalAllocator.create({ backend: slabBackend, heapBytes: 8 * MiB, checked: true });
    const live: number[] = [];
    let seed = 99;
    for (let step = 0; step < 3000; step++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      if (live.length > 0 && seed % 3 === 0) heap.free(live.splice(seed % live.length, 1)[0]!);
      else if (seed % 7 === 0 && live.length > 0) {
        const index = seed % live.length;
        live[index] = heap.realloc(live[index]!, seed % 20_000);
      } else live.push(seed % 5 === 0 ? heap.alignedAlloc(1 << (3 + (seed % 10)), seed % 9000) : heap.malloc(seed % 12_000));
    }
    heap.check();
    for (const address of live) heap.free(address);
    expect(heap.usedBytes()).toBe(0);
    heap.detach();
  });
});
