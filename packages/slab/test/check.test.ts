import type { StateCounters } from '@heaplab/core/backend';
import { expectAllocError, makeBackendContext } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { slabBackend } from '../src/index.js';
import { CLASS_BITMAP_WORDS, CLASS_HEADER_BYTES, CLASS_OBJECTS, classOf } from '../src/size-classes.js';
import type { SlabAllocator } from '../src/slab.js';
import {
  CL_COUNT,
  CLASS_RECORD_WORDS,
  OWNER_CLASS_SHIFT,
  PAGE_ENTRY_WORDS,
  PAGE_FREE,
  PAGE_SLAB,
  PAGE_UNMANAGED,
  SH_BITMAP,
  SH_FREE,
  SH_HINT,
  SH_NEXT,
  SH_PREV,
  SH_TAG,
  SlabList,
} from '../src/layout.js';
import { headerWord, makeSlab, MiB, PAGE, pageOwner } from './harness.js';

/**
 * A heap with two full slabs and a partial one of the 96-byte class, a cached empty slab of
 * the 32-byte class and a large run: every list and kind has something on it.
 */
function busyHeap(): { slab: SlabAllocator; objects: number[]; run: number } {
  const { slab } = makeSlab({ emptySlabs: 1 });
  const cls = classOf(96);
  const objects: number[] = [];
  for (let i = 0; i < 2 * CLASS_OBJECTS[cls]! + 5; i++) objects.push(slab.allocate(96, 8));
  slab.release(slab.allocate(32, 8));
  const run = slab.allocate(10 * PAGE, 8);
  slab.check();
  return { slab, objects, run };
}

/** Changes one word, expects check() to name the damage, then puts the word back. */
function expectCaught(slab: SlabAllocator, word: number, value: number, names: string): void {
  const saved = slab.u32[word]!;
  slab.u32[word] = value;
  const error = expectAllocError(() => slab.check(), 'HeapCorrupted');
  expect(error.message).toContain(names);
  slab.u32[word] = saved;
  slab.check();
}

describe('slab backend: check() finds damage', () => {
  it('passes on a busy heap and reports its blocks', () => {
    const { slab, objects } = busyHeap();
    const report = slab.check();
    expect(report.liveBlocks).toBe(objects.length + 1);
    expect(report.usedBytes).toBe(objects.length * 96 + 10 * PAGE);
    expect(report.pools).toBe(1);
    expect(report.blocks).toBe(report.liveBlocks + report.freeBlocks);
  });

  it('catches a slab header whose free count, bitmap, hint or tag is wrong', () => {
    const { slab, objects } = busyHeap();
    const owner = pageOwner(slab, objects[objects.length - 1]!);
    const header = headerWord(owner.start, owner.cls);
    const free = slab.u32[header + (SH_FREE >>> 2)]!;
    expectCaught(slab, header + (SH_FREE >>> 2), free + 1, 'free count');
    const bitmap = header + (SH_BITMAP >>> 2);
    expectCaught(slab, bitmap, slab.u32[bitmap]! ^ 1, 'free count');
    // A bit past the last object.
    const lastWord = bitmap + CLASS_BITMAP_WORDS[owner.cls]! - 1;
    expectCaught(slab, lastWord, 0xffff_ffff, 'past the last');
    expectCaught(slab, header + (SH_TAG >>> 2), 0x12345678, 'tag');
    expectCaught(slab, header + (SH_HINT >>> 2), CLASS_BITMAP_WORDS[owner.cls]!, 'hint');
  });

  it('catches broken list links, wrong list lengths and a slab on the wrong list', () => {
    const { slab, objects } = busyHeap();
    const cls = classOf(96);
    const fullHead = slab.caches.lists.head(cls, SlabList.full);
    const second = slab.u32[headerWord(fullHead, cls) + (SH_NEXT >>> 2)]!;
    expect(second).not.toBe(0);
    expectCaught(slab, headerWord(second, cls) + (SH_PREV >>> 2), 0, 'previous link');
    const countWord = slab.sClasses + cls * CLASS_RECORD_WORDS + (CL_COUNT >>> 2) + SlabList.full;
    expectCaught(slab, countWord, 3, 'length word');
    // The partial slab put at the head of the full list.
    const partial = slab.caches.lists.head(cls, SlabList.partial);
    expect(pageOwner(slab, objects[objects.length - 1]!).start).toBe(partial);
    expectCaught(slab, slab.sClasses + cls * CLASS_RECORD_WORDS + SlabList.full, partial, 'full list');
  });

  it('catches page-map entries that disagree with their run', () => {
    const { slab, objects, run } = busyHeap();
    const map = slab.map.word;
    const runPage = map + ((run - slab.arenaStart) / PAGE) * PAGE_ENTRY_WORDS;
    expectCaught(slab, runPage + 2 * PAGE_ENTRY_WORDS, slab.u32[runPage]! + PAGE, 'in the run');
    // A run length past the run, or short of it, leaves a page that is in no run.
    expectCaught(slab, runPage + 1, 11, 'in the run');
    expectCaught(slab, runPage + 1, 9, 'as its start');
    const slabStart = pageOwner(slab, objects[0]!).start;
    const slabPage = map + ((slabStart - slab.arenaStart) / PAGE) * PAGE_ENTRY_WORDS;
    expectCaught(slab, slabPage, slabStart + ((classOf(8192) << OWNER_CLASS_SHIFT) | PAGE_SLAB), 'pages, not');
    // Another class of the same slab size: the header's tag names the slab's own class.
    expectCaught(slab, slabPage, slab.u32[slabPage]! + (1 << OWNER_CLASS_SHIFT), 'tag');
    const freePage = map + (slab.map.pages - 1) * PAGE_ENTRY_WORDS;
    expectCaught(slab, freePage, 7, 'unknown kind');
    expectCaught(slab, freePage + 1, 3, 'run length');
  });

  it('catches counters that disagree with the walk', () => {
    const { slab } = busyHeap();
    // Core's counters, moved through their own API: each one off by a little, then put back.
    const damaged = (change: (counters: StateCounters) => void, names: string): void => {
      const saved = slab.counters.values();
      change(slab.counters);
      expect(expectAllocError(() => slab.check(), 'HeapCorrupted').message).toContain(names);
      slab.counters.restore(saved);
      slab.check();
    };
    damaged((counters) => counters.resized(8, 0, 0), 'usedBytes');
    damaged((counters) => counters.released(0, 0, 0), 'liveBlocks');
    damaged((counters) => counters.resized(0, 0, 8), 'grantedBytes');
    damaged((counters) => counters.resized(0, 8, 0), 'requestedBytes');
    damaged((counters) => counters.addMemory(PAGE, 0), 'totalBytes');
    // One slab more or less than the walk finds is one slab header's metadata off.
    damaged((counters) => counters.addMemory(0, CLASS_HEADER_BYTES[classOf(96)]!), 'metadataBytes');
    // The peak can only fall below the used bytes by damage to its word, which core's
    // counters do not name to backends: found as the one word that raising and lowering the
    // used bytes past the peak leaves changed.
    const before = slab.u32.slice();
    const { usedBytes, peakUsedBytes } = slab.counters.values();
    slab.counters.resized(peakUsedBytes - usedBytes + 8, 0, 0);
    slab.counters.resized(usedBytes - peakUsedBytes - 8, 0, 0);
    const changed = before.findIndex((word, index) => slab.u32[index] !== word);
    expect(slab.u32[changed]).toBe(peakUsedBytes + 8);
    slab.u32[changed] = peakUsedBytes;
    expectCaught(slab, changed, usedBytes - 8, 'peakUsedBytes');
    expectCaught(slab, slab.sMagic, 0, 'not formatted');
  });

  it("catches managed pages outside the pools of core's table, and pool pages left unmanaged", () => {
    const { slab } = busyHeap();
    expect(slab.check().pools).toBe(1);
    const lastEntry = slab.map.word + (slab.map.pages - 1) * PAGE_ENTRY_WORDS;
    expect(slab.u32[lastEntry]).toBe(PAGE_FREE);
    expectCaught(slab, lastEntry, PAGE_UNMANAGED, 'is unmanaged');
    // A page past the only pool that the page map says is free.
    const { slab: half } = makeSlab({}, 8 * MiB, 4 * MiB);
    const outside = half.map.word + (half.map.pages - 1) * PAGE_ENTRY_WORDS;
    expect(half.u32[outside]).toBe(PAGE_UNMANAGED);
    expectCaught(half, outside, PAGE_FREE, 'lies in no pool');
  });

  it('catches more cached empty slabs than the option allows', () => {
    const { slab, ctx } = makeSlab({ emptySlabs: 1 });
    const cls = classOf(32);
    const objects = Array.from({ length: CLASS_OBJECTS[cls]! * 2 }, () => slab.allocate(32, 8));
    for (const address of objects) slab.release(address);
    expect(slab.caches.lists.count(cls, SlabList.empty)).toBe(1);
    // A handle over the same heap that caches none sees the one cached slab as too many.
    const strictContext = makeBackendContext({ memory: ctx.memory, stateBytes: slabBackend.stateBytes });
    const strict = slabBackend.create(strictContext, { emptySlabs: 0 });
    expect(expectAllocError(() => strict.check(), 'HeapCorrupted').message).toContain('emptySlabs');
  });
});
