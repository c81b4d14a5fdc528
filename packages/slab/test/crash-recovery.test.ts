/**
 * A thread killed at every store of the slab backend's operations, and `recover()` after.
 * The kit's suite covers a malloc and a free over a mixed heap; the targeted cases below take
 * the paths it does not reach: the first object of a new slab, the last free of a slab (to
 * the empty list, or back to the pages), refill runs (from a new, a cached and a partial
 * slab), cached slabs given back for a run, large runs allocated, freed, grown and shrunk in
 * place, and addMemory.
 */

import { MIN_ALIGN, PAGE_SIZE } from '@heaplab/core';
import {
  describeCrashRecovery,
  dyingMemory,
  makeBackendContext,
  Random,
  recordPool,
  signBlock,
  type Signature,
  type StoreBudget,
  ThreadDeath,
  verifyBlock,
} from '@heaplab/test-kit';
import type { AllocError, HeapMemory } from '@heaplab/core';
import { type BlockLayout, PoolView, StateCounters } from '@heaplab/core/backend';
import { describe, expect, it } from 'vitest';

import { slabBackend } from '../src/index.js';
import { CLASS_CODE_WORD, CLASS_CODE_WORDS, CLASS_HEADER_OFFSET, CLASS_OBJECTS, CLASS_PAGES, classOf } from '../src/size-classes.js';
import type { SlabAllocator } from '../src/slab.js';
import { PAGE_FREE, PAGE_LARGE, PAGE_UNMANAGED, SH_BITMAP, SH_TAG, SlabList, slabTag } from '../src/layout.js';
import { listCounts, MiB, pageOwner } from './harness.js';

describeCrashRecovery({ label: 'slab', backend: slabBackend });
// No cached empty slabs: every slab a free empties goes back to the page layer at once.
describeCrashRecovery({ label: 'slab (emptySlabs=0)', backend: slabBackend, options: { emptySlabs: 0 } });

const ARENA_BYTES = 4 * MiB;
const RECOVERING_THREAD = 1;
const DYING_THREAD = 2;

/** A block a scenario holds, signed over `signature.size` bytes. */
interface Held {
  address: number;
  signature: Signature;
  layout: BlockLayout;
}

/** A heap made ready for one operation, and what the operation is about. */
interface Setup {
  held: Held[];
  /** The block the operation frees or resizes; it must come out live or free, never half. */
  subject?: Held;
}

/** One operation to kill at every store. */
interface Scenario {
  name: string;
  options?: Record<string, unknown>;
  /** Bytes given to init; the rest of the arena is for addMemory. */
  initBytes?: number;
  prepare: (slab: SlabAllocator, sign: (address: number, size: number) => Held) => Setup;
  /** `memory` is the heap's, to record a pool as core does once the backend returns. */
  run: (slab: SlabAllocator, setup: Setup, memory: HeapMemory) => void;
  /** Extra checks after each recovery; `died` is false for the run that finished. */
  after?: (slab: SlabAllocator, setup: Setup, died: boolean, memory: HeapMemory) => void;
}

/**
 * A backend instance over `memory` for `threadId`, writing through `views`: core's counters
 * and pool view too, so deaths at their stores are tried as well.
 */
function instance(memory: HeapMemory, threadId: number, options: Record<string, unknown>, views = memory): SlabAllocator {
  const context = makeBackendContext({ memory, threadId, arenaBytes: ARENA_BYTES, stateBytes: slabBackend.stateBytes });
  return slabBackend.create(
    { ...context, memory: views, counters: new StateCounters(views), pools: new PoolView(views) },
    slabBackend.normalizeOptions(options),
  );
}

/** Formats `slab` over `[start, start + size)` of `memory` and records the pool, as a heap's creator does. */
function format(slab: SlabAllocator, memory: HeapMemory, start: number, size: number): void {
  slab.init(start, size);
  recordPool(memory, start, size);
}

/**
 * Runs `scenario` once to count its stores, then once more dying before each store; after
 * every death a fresh instance recovers, and the heap must pass check(), keep every held
 * block intact with its layout, have the subject live (intact) or free, then empty fully,
 * fill with 4 KiB blocks and empty again. Returns how many stores the operation made.
 */
function killAtEveryStore(scenario: Scenario): number {
  const options = scenario.options ?? {};
  const context = makeBackendContext({ arenaBytes: ARENA_BYTES, threadId: RECOVERING_THREAD, stateBytes: slabBackend.stateBytes });
  const memory = context.memory;
  makeBackendContext({ memory, threadId: DYING_THREAD, arenaBytes: ARENA_BYTES });
  const formatting = instance(memory, RECOVERING_THREAD, options);
  format(formatting, memory, context.arenaStart, scenario.initBytes ?? ARENA_BYTES);
  let sequence = 0;
  const sign = (address: number, size: number): Held => {
    expect(address, `preparing ${scenario.name}: an allocation of ${size} bytes`).not.toBe(0);
    const signature = { writer: 4, sequence: sequence++, size };
    signBlock(memory.u8, address, signature);
    return { address, signature, layout: formatting.blockLayout(address) };
  };
  const setup = scenario.prepare(formatting, sign);
  formatting.check();
  const bytes = memory.u8.slice();

  const attempt = (budget: StoreBudget): boolean => {
    memory.u8.set(bytes);
    try {
      scenario.run(instance(memory, DYING_THREAD, options, dyingMemory(memory, budget)), setup, memory);
      return false;
    } catch (error) {
      if (error instanceof ThreadDeath) return true;
      throw error;
    }
  };
  const counting: StoreBudget = { stores: 0, limit: Infinity };
  attempt(counting);
  const total = counting.stores;
  expect(total, `${scenario.name}: stores`).toBeGreaterThan(0);
  for (let limit = 0; limit <= total; limit++) {
    const where = `${scenario.name}, died before store ${limit} of ${total}`;
    const died = attempt({ stores: 0, limit });
    expect(died, where).toBe(limit < total);
    const slab = instance(memory, RECOVERING_THREAD, options);
    const repair = slab.recover({ lock: 'heap', deadThreadId: DYING_THREAD });
    expect(repair.lostBytes, where).toBe(0);
    slab.check();
    for (const block of setup.held) {
      expect(verifyBlock(memory.u8, block.address, block.signature), where).toBeNull();
      expect(slab.blockLayout(block.address), where).toEqual(block.layout);
    }
    let subjectLive = false;
    if (setup.subject !== undefined) {
      const subject = setup.subject;
      try {
        expect(slab.usableSize(subject.address), where).toBeGreaterThanOrEqual(subject.signature.size);
        subjectLive = true;
      } catch (error) {
        if ((error as AllocError).kind !== 'NotAllocated') throw error;
      }
      if (subjectLive) expect(verifyBlock(memory.u8, subject.address, subject.signature), where).toBeNull();
    }
    scenario.after?.(slab, setup, died, memory);
    for (const block of setup.held) slab.release(block.address);
    if (subjectLive) slab.release(setup.subject!.address);
    slab.check();
    // A death in an allocation may leave the one block it was making live, held by nobody.
    const leaked = slab.usedBytes();
    expect(leaked, `${where}: bytes used once every held block is freed`).toBeLessThanOrEqual(setup.subject === undefined ? MiB : 0);
    const filled: number[] = [];
    for (let address = slab.allocate(4096, MIN_ALIGN); address !== 0; address = slab.allocate(4096, MIN_ALIGN)) filled.push(address);
    expect(filled.length, `${where}: 4 KiB blocks after recovery`).toBeGreaterThan((slab.totalBytes() - MiB - leaked) / 4096 / 2);
    for (const address of filled) slab.release(address);
    slab.check();
    expect(slab.usedBytes(), where).toBe(leaked);
  }
  return total;
}

/** True when the header of a slab of class `cls` at `start` carries that slab's tag. */
function tagIsValid(slab: SlabAllocator, start: number, cls: number): boolean {
  return slab.u32[((start + CLASS_HEADER_OFFSET[cls]!) >>> 2) + (SH_TAG >>> 2)] === slabTag(start, cls, slab.cookie);
}

/** `count` blocks of `size` bytes, signed. */
function signMany(slab: SlabAllocator, sign: (address: number, size: number) => Held, size: number, count: number): Held[] {
  return Array.from({ length: count }, () => sign(slab.allocate(size, MIN_ALIGN), size));
}

/** Blocks of assorted sizes, so other classes and runs are around whatever the scenario does. */
function bystanders(slab: SlabAllocator, sign: (address: number, size: number) => Held): Held[] {
  const random = new Random(11);
  return Array.from({ length: 12 }, (_, i) => {
    const size = i % 4 === 3 ? random.int(9000, 30_000) : random.int(16, 2000);
    return sign(slab.allocate(size, MIN_ALIGN), size);
  });
}

/**
 * A `prepare` that leaves the bystanders and one full slab of `size`'s class, and no other
 * slab of it: the next object or run of the class makes a new slab, pushed on a list that has one.
 */
function oneFullSlab(size: number) {
  return (slab: SlabAllocator, sign: (address: number, size: number) => Held) => {
    const cls = classOf(size);
    const held = [...bystanders(slab, sign), ...signMany(slab, sign, size, CLASS_OBJECTS[cls]!)];
    expect(listCounts(slab, cls)).toEqual({ partial: 0, full: 1, empty: 0 });
    return { held };
  };
}

describe('slab: a thread killed at every store of the paths the generic operations miss', () => {
  it('the first object of a new slab, at the head of a list that has slabs', () => {
    const cls = classOf(200);
    let made = 0;
    const stores = killAtEveryStore({
      name: 'malloc(200) making a new slab',
      // One full slab of the class, so the new one is pushed on a list and pages are taken.
      prepare: oneFullSlab(200),
      run: (slab) => {
        // The run that counts the stores finishes first: it says where the slab goes.
        const address = slab.allocate(200, MIN_ALIGN);
        if (made === 0) made = pageOwner(slab, address).start;
      },
      after: (slab) => {
        const counts = listCounts(slab, cls);
        expect(counts.full).toBe(1);
        expect(counts.partial + counts.empty).toBeLessThanOrEqual(1);
        // A slab that never got published leaves free pages, and no tag for a link to pass.
        if (pageOwner(slab, made).kind === PAGE_FREE) expect(tagIsValid(slab, made, cls)).toBe(false);
      },
    });
    // Header, page map, list and counters: well past the handful of a plain allocation.
    expect(stores).toBeGreaterThan(10);
  });

  it('an aligned object, whose alignment code is written before it goes live', () => {
    killAtEveryStore({
      name: 'alignedAlloc(64, 100)',
      prepare: (slab, sign) => ({ held: bystanders(slab, sign) }),
      run: (slab) => void slab.allocate(100, 64),
    });
  });

  it('the last free of a slab, cached on the empty list or given back to the pages', () => {
    const cls = classOf(500);
    for (const emptySlabs of [0, 1]) {
      killAtEveryStore({
        name: `free of the last object of a slab (emptySlabs=${emptySlabs})`,
        options: { emptySlabs },
        prepare: (slab, sign) => {
          const held = bystanders(slab, sign);
          const subject = sign(slab.allocate(500, MIN_ALIGN), 500);
          expect(listCounts(slab, cls).partial).toBe(1);
          return { held, subject };
        },
        run: (slab, setup) => slab.release(setup.subject!.address),
        after: (slab, setup, died) => {
          if (!died) expect(listCounts(slab, cls)).toEqual({ partial: 0, full: 0, empty: emptySlabs });
          // The slab's pages are a cached slab or free: never a slab on no list; free pages
          // keep no tag.
          const owner = pageOwner(slab, setup.subject!.address);
          if (owner.kind !== PAGE_FREE) expect(slab.caches.lists.count(cls, SlabList.empty) + slab.caches.lists.count(cls, SlabList.partial)).toBe(1);
          const start = setup.subject!.address - (setup.subject!.address % PAGE_SIZE);
          if (owner.kind === PAGE_FREE) expect(tagIsValid(slab, start, cls)).toBe(false);
        },
      });
    }
  });

  it('a free into a full slab in the middle of the full list', () => {
    const cls = classOf(1500);
    killAtEveryStore({
      name: 'free moving a slab from the full list to the partial one',
      prepare: (slab, sign) => {
        const blocks = signMany(slab, sign, 1500, 3 * CLASS_OBJECTS[cls]!);
        expect(listCounts(slab, cls)).toEqual({ partial: 0, full: 3, empty: 0 });
        const subject = blocks.splice(CLASS_OBJECTS[cls]! + 2, 1)[0]!;
        return { held: blocks, subject };
      },
      run: (slab, setup) => slab.release(setup.subject!.address),
    });
  });

  it('a run that needs the cached empty slabs of several classes given back first', () => {
    killAtEveryStore({
      name: 'malloc of a run through releaseEmptySlabs',
      options: { emptySlabs: 2 },
      prepare: (slab, sign) => {
        // Cache empty slabs of three classes, then take every free page but a few.
        for (const size of [64, 300, 3000]) {
          const cls = classOf(size);
          const blocks = Array.from({ length: 2 * CLASS_OBJECTS[cls]! }, () => slab.allocate(size, MIN_ALIGN));
          for (const address of blocks) slab.release(address);
          expect(listCounts(slab, cls).empty).toBe(2);
        }
        const held = bystanders(slab, sign);
        const left = slab.pages.availablePages();
        held.push(sign(slab.allocate((left - 2) * PAGE_SIZE, MIN_ALIGN), (left - 2) * PAGE_SIZE));
        expect(slab.caches.cachedEmptyPages()).toBeGreaterThan(4);
        return { held };
      },
      run: (slab) => expect(slab.allocate(4 * PAGE_SIZE + 1, MIN_ALIGN)).not.toBe(0),
    });
  });

  it('a refill run: from a new slab, from a cached empty one, and from free groups that fill a partial slab', () => {
    /** The blocks the dying run took: live, whole, and its slab on the list they name. */
    const taken: number[] = [];
    const runOf = (size: number, count: number) => (slab: SlabAllocator) => {
      taken.length = 0;
      slab.allocateRun(size, count, (block) => void taken.push(block));
    };
    const afterRun = (size: number) => (slab: SlabAllocator, _setup: Setup, died: boolean) => {
      // A death may leave one object more live than taken (its bit was cleared), never a
      // taken one free.
      for (const block of taken) expect(slab.usableSize(block)).toBeGreaterThanOrEqual(size);
      if (!died) expect(taken.length).toBeGreaterThan(0);
      for (const block of taken) slab.release(block);
    };
    const cls = classOf(24);
    const newSlab = killAtEveryStore({
      name: 'allocateRun(24, 21) making a new slab',
      prepare: oneFullSlab(24),
      run: runOf(24, 21),
      after: afterRun(24),
    });
    // The new slab's stores, then each of its 16 objects' bit, count and counters.
    expect(newSlab).toBeGreaterThan(16 * 3);
    killAtEveryStore({
      name: 'allocateRun(24, 21) from a cached empty slab',
      prepare: (slab, sign) => {
        const held = bystanders(slab, sign);
        for (const address of Array.from({ length: 20 }, () => slab.allocate(24, MIN_ALIGN))) slab.release(address);
        expect(listCounts(slab, cls)).toEqual({ partial: 0, full: 0, empty: 1 });
        return { held };
      },
      run: runOf(24, 21),
      after: afterRun(24),
    });
    killAtEveryStore({
      name: 'allocateRun(56, 16) taking the last two free groups of a partial slab',
      prepare: (slab, sign) => {
        const objects = signMany(slab, sign, 56, CLASS_OBJECTS[classOf(56)]!);
        // Objects 8 to 23: two whole groups of 8, the slab's only free objects.
        for (const block of objects.splice(8, 16)) slab.release(block.address);
        expect(listCounts(slab, classOf(56))).toEqual({ partial: 1, full: 0, empty: 0 });
        return { held: [...bystanders(slab, sign), ...objects] };
      },
      run: runOf(56, 16),
      after: (slab, setup, died) => {
        if (!died) expect(listCounts(slab, classOf(56))).toEqual({ partial: 0, full: 1, empty: 0 });
        afterRun(56)(slab, setup, died);
      },
    });
  });

  it('a large run allocated and freed', () => {
    killAtEveryStore({
      name: 'malloc(40 KiB) as a run',
      prepare: (slab, sign) => ({ held: bystanders(slab, sign) }),
      run: (slab) => void slab.allocate(40 * 1024, 64 * 1024),
    });
    killAtEveryStore({
      name: 'free of a 12-page run',
      prepare: (slab, sign) => {
        const held = bystanders(slab, sign);
        const subject = sign(slab.allocate(12 * PAGE_SIZE, MIN_ALIGN), 12 * PAGE_SIZE);
        held.push(sign(slab.allocate(20_000, MIN_ALIGN), 20_000));
        return { held, subject };
      },
      run: (slab, setup) => slab.release(setup.subject!.address),
    });
  });

  it('a large run shrunk and grown in place: its old or its new length, never pages of neither', () => {
    for (const [from, to] of [
      [12, 5],
      [5, 12],
    ] as const) {
      killAtEveryStore({
        name: `a run resized in place from ${from} to ${to} pages`,
        prepare: (slab, sign) => {
          const held = bystanders(slab, sign);
          const address = slab.allocate(from * PAGE_SIZE, MIN_ALIGN);
          // The bytes both sizes keep are signed; the pages after a grow must be free.
          const subject = sign(address, Math.min(from, to) * PAGE_SIZE);
          for (let page = from; page < to; page++) expect(pageOwner(slab, address + page * PAGE_SIZE).kind).toBe(PAGE_FREE);
          return { held, subject };
        },
        run: (slab, setup) => expect(slab.resizeInPlace(setup.subject!.address, to * PAGE_SIZE)).toBe(true),
        after: (slab, setup, died) => {
          const pages = slab.usableSize(setup.subject!.address) / PAGE_SIZE;
          expect([from, to]).toContain(pages);
          if (!died) expect(pages).toBe(to);
          for (let page = pages; page < Math.max(from, to); page++) {
            expect(pageOwner(slab, setup.subject!.address + page * PAGE_SIZE).kind).toBe(PAGE_FREE);
          }
          expect(pageOwner(slab, setup.subject!.address).kind).toBe(PAGE_LARGE);
        },
      });
    }
  });

  it('addMemory: all or nothing', () => {
    const initBytes = 2 * MiB;
    let total = 0;
    killAtEveryStore({
      name: 'addMemory of 1 MiB',
      initBytes,
      prepare: (slab, sign) => {
        total = slab.totalBytes();
        return { held: bystanders(slab, sign) };
      },
      // Core records the pool once addMemory returns (with atomics, which the dying views
      // do not take): a death inside addMemory leaves the range in no pool, for recovery to
      // take back.
      run: (slab, _setup, memory) => {
        slab.addMemory(slab.arenaStart + initBytes + 100, MiB);
        recordPool(memory, slab.arenaStart + initBytes + 100, MiB);
      },
      after: (slab, _setup, died, memory) => {
        const first = slab.arenaStart + initBytes + PAGE_SIZE;
        if (died) {
          // Undone: the range can be added again, whole.
          expect(slab.totalBytes()).toBe(total);
          for (let page = first; page < first + MiB - PAGE_SIZE; page += PAGE_SIZE) {
            expect(pageOwner(slab, page).kind).toBe(PAGE_UNMANAGED);
          }
          expect(slab.check().pools).toBe(1);
          slab.addMemory(slab.arenaStart + initBytes + 100, MiB);
          recordPool(memory, slab.arenaStart + initBytes + 100, MiB);
        }
        expect(slab.totalBytes()).toBe(total + MiB - PAGE_SIZE);
        expect(slab.check().pools).toBe(2);
        expect(pageOwner(slab, first).kind).toBe(PAGE_FREE);
      },
    });
  });
});

describe('slab: what recover() trusts when two records disagree', () => {
  /** A heap with a partial slab of the 96-byte class. */
  function partialSlab(options: Record<string, unknown> = {}) {
    const context = makeBackendContext({ arenaBytes: ARENA_BYTES, stateBytes: slabBackend.stateBytes });
    const slab = instance(context.memory, RECOVERING_THREAD, options);
    format(slab, context.memory, context.arenaStart, ARENA_BYTES);
    const objects = Array.from({ length: 5 }, () => slab.allocate(96, MIN_ALIGN));
    const start = pageOwner(slab, objects[0]!).start;
    return { slab, objects, start, header: (start + CLASS_HEADER_OFFSET[classOf(96)]!) >>> 2 };
  }

  it('recounts a free count from the bitmap, and moves the slab to the list the bitmap names', () => {
    const { slab, header } = partialSlab();
    const cls = classOf(96);
    // A free that died after setting its bit: count and lists still say one object more live.
    const u32 = slab.u32;
    u32[header + (SH_BITMAP >>> 2)] = u32[header + (SH_BITMAP >>> 2)]! | 1;
    expect(() => slab.check()).toThrow(/free count/);
    const repair = slab.recover({ lock: 'heap', deadThreadId: DYING_THREAD });
    expect(repair.notes.join('\n')).toContain('recounted');
    expect(slab.check().liveBlocks).toBe(4);
    expect(slab.caches.lists.count(cls, SlabList.partial)).toBe(1);
    expect(slab.stats().liveBlocks).toBe(4);
  });

  it('clears the alignment code of a free object, and keeps that of a live one', () => {
    const context = makeBackendContext({ arenaBytes: ARENA_BYTES, stateBytes: slabBackend.stateBytes });
    const slab = instance(context.memory, RECOVERING_THREAD, {});
    format(slab, context.memory, context.arenaStart, ARENA_BYTES);
    const kept = slab.allocate(100, 64);
    const freed = slab.allocate(100, 64);
    const layout = slab.blockLayout(kept);
    expect(layout).toMatchObject({ minAlign: 64, maxAlign: 64 });
    // A free that died after its bit, before clearing the code: put the code back by hand.
    const codeWords = (pageOwner(slab, kept).start + CLASS_HEADER_OFFSET[classOf(128)]!) >>> 2;
    const before = slab.u32.slice(codeWords, codeWords + 16);
    slab.release(freed);
    const codes = CLASS_CODE_WORD[classOf(128)]!;
    slab.u32.set(before.subarray(codes, codes + CLASS_CODE_WORDS[classOf(128)]!), codeWords + codes);
    expect(() => slab.check()).toThrow(/alignment code/);
    const repair = slab.recover({ lock: 'heap', deadThreadId: DYING_THREAD });
    expect(repair.notes.join('\n')).toContain('alignment code');
    slab.check();
    expect(slab.blockLayout(kept)).toEqual(layout);
  });

  it('gives empty slabs past emptySlabs back to the pages', () => {
    const context = makeBackendContext({ arenaBytes: ARENA_BYTES, stateBytes: slabBackend.stateBytes });
    const generous = instance(context.memory, RECOVERING_THREAD, { emptySlabs: 3 });
    format(generous, context.memory, context.arenaStart, ARENA_BYTES);
    const cls = classOf(40);
    const blocks = Array.from({ length: 3 * CLASS_OBJECTS[cls]! }, () => generous.allocate(40, MIN_ALIGN));
    for (const address of blocks) generous.release(address);
    expect(listCounts(generous, cls).empty).toBe(3);
    const strict = instance(context.memory, RECOVERING_THREAD, { emptySlabs: 1 });
    expect(() => strict.check()).toThrow(/emptySlabs/);
    const repair = strict.recover({ lock: 'heap', deadThreadId: DYING_THREAD });
    expect(repair.notes.join('\n')).toContain('2 empty slab(s)');
    strict.check();
    expect(listCounts(strict, cls).empty).toBe(1);
    expect(strict.pages.usedPages()).toBe(strict.u32[strict.sPageMapPages]! + CLASS_PAGES[cls]!);
  });

  it('refuses to rebuild from records no death leaves: a published slab with a wrong tag', () => {
    const { slab, header } = partialSlab();
    slab.u32[header] = slab.u32[header]! ^ 0x100;
    expect(() => slab.recover({ lock: 'heap', deadThreadId: DYING_THREAD })).toThrow(/tag/);
  });
});
