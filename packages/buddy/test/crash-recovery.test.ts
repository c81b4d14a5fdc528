/**
 * Crash recovery of the buddy heap: the test kit's suite (a thread killed at every store of
 * malloc, free and realloc, and a worker reaped by watchWorker), then the same exact deaths
 * at every store of the paths the kit's operations do not reach far: splits and merges over
 * many levels, resizes across several orders, every page-allocator path and addMemory.
 * After each death a fresh instance recovers; the heap must pass check(), keep every other
 * block intact, and merge back, once everything is freed, into the blocks its pools were cut
 * into.
 */

import { AllocError, type HeapMemory, hex, KiB, MiB, PAGE_SIZE } from '@heaplab/core';
import { type BackendContext, PoolView, StateCounters } from '@heaplab/core/backend';
import {
  describeCrashRecovery,
  dyingMemory,
  makeBackendContext,
  recordPool,
  type Signature,
  signBlock,
  type StoreBudget,
  ThreadDeath,
  verifyBlock,
} from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { BUDDY_STATE_BYTES, BuddyAllocator, buddyBackend, BuddyPageAllocator } from '../src/index.js';
import { FREE, UNIT_BYTES } from '../src/layout.js';
import { freeSnapshot, walkBlocks } from './heap-walk.js';

describeCrashRecovery({ label: 'buddy', backend: buddyBackend });

const ARENA_START = 4 * MiB;
const ARENA_BYTES = 4 * MiB;
const DYING_THREAD = 2;

/** Both faces of one heap, and core's side of `addMemory`: recording the pool. */
interface Faces {
  bytes: BuddyAllocator;
  pages: BuddyPageAllocator;
  /** Records a pool in core's table, as core does once the backend's `addMemory` returns. */
  record: (start: number, size: number) => void;
}

/** A block or run the test holds, signed over its first `size` bytes. */
interface Held {
  address: number;
  /** Bytes for a byte block; a run holds `size / PAGE_SIZE` pages. */
  size: number;
  pages: boolean;
  signature: Signature;
}

interface Scenario {
  name: string;
  /** Where the pool starts and how long it is (default: the whole arena). */
  pool?: [number, number];
  /** Builds the heap the operation runs on; returns the blocks held across it. */
  prepare: (faces: Faces) => { address: number; size: number; pages?: boolean }[];
  /** Index in the held blocks of the one the operation acts on, if any. */
  subject?: number;
  /** Bytes of the subject that must stay intact wherever it is still live. */
  keep?: number;
  /** The operation, over a heap that may be the dying one. */
  run: (faces: Faces, held: Held[]) => void;
  /** Fewest stores the operation must have (so the test cannot pass by dying nowhere). */
  minStores: number;
  /** Most blocks nobody holds that may stay live after a death (a dead allocation's). */
  maxLeft: number;
}

/**
 * The faces over `context`. Core's record goes through `memory`, the plain views (a dying
 * thread's views cannot do the atomic store that publishes the pool); it is reached only when
 * `addMemory` returned, as in core.
 */
function faces(context: BackendContext, memory: HeapMemory = context.memory): Faces {
  const bytes = new BuddyAllocator(context);
  return { bytes, pages: new BuddyPageAllocator(bytes.blocks), record: (start, size) => recordPool(memory, start, size) };
}

/** `context` with every access, core's counters and pool view included, going through `views`. */
function through(context: BackendContext, views: HeapMemory): BackendContext {
  return { ...context, memory: views, counters: new StateCounters(views), pools: new PoolView(views) };
}

/** Free blocks as `address:order` of the largest aligned blocks that cut every pool: a heap with nothing live. */
function maximalCut(bytes: BuddyAllocator): string[] {
  const pools = bytes.blocks.pools;
  const cut: string[] = [];
  for (let pool = 0; pool < pools.count(); pool++) {
    const end = pools.end(pool);
    for (let block = pools.blocksStart(pool); block < end; ) {
      let order = 31 - Math.clz32(block & -block);
      while (block + 2 ** order > end) order--;
      if (order > 30) order = 30;
      cut.push(`${hex(block)}:${order}`);
      block += 2 ** order;
    }
  }
  return cut.sort();
}

function killAtEveryStore(scenario: Scenario): void {
  it(`a thread killed at every store of ${scenario.name} leaves a heap recover() repairs`, () => {
    const context = makeBackendContext({ arenaBytes: ARENA_BYTES, stateBytes: BUDDY_STATE_BYTES });
    const memory = context.memory;
    const setup = faces(context);
    const [start, size] = scenario.pool ?? [ARENA_START, ARENA_BYTES];
    setup.bytes.init(start, size);
    recordPool(memory, start, size);
    const held: Held[] = scenario.prepare(setup).map((block, sequence) => {
      const signature = { writer: 7, sequence, size: block.size };
      signBlock(memory.u8, block.address, signature);
      return { ...block, pages: block.pages ?? false, signature };
    });
    setup.bytes.check();
    const prepared = memory.u8.slice();
    const subject = scenario.subject === undefined ? null : held[scenario.subject]!;

    const runDying = (budget: StoreBudget): boolean => {
      memory.u8.set(prepared);
      try {
        scenario.run(faces(through(context, dyingMemory(memory, budget)), memory), held);
        return false;
      } catch (error) {
        if (error instanceof ThreadDeath) return true;
        throw error;
      }
    };
    const counting: StoreBudget = { stores: 0, limit: Infinity };
    runDying(counting);
    const total = counting.stores;
    expect(total, `${scenario.name}: stores`).toBeGreaterThanOrEqual(scenario.minStores);

    for (let limit = 0; limit < total; limit++) {
      const where = `${scenario.name}, died before store ${limit} of ${total}`;
      expect(runDying({ stores: 0, limit }), where).toBe(true);
      const { bytes, pages } = faces(context);
      const repair = bytes.recover({ lock: 'heap', deadThreadId: DYING_THREAD });
      expect(repair.lostBytes, where).toBe(0);
      bytes.check();
      for (const block of held) {
        if (block === subject) continue;
        expect(verifyBlock(memory.u8, block.address, block.signature), `${where}: block at ${hex(block.address)}`).toBeNull();
        if (block.pages) pages.deallocPages(block.address, block.size / PAGE_SIZE);
        else bytes.release(block.address);
      }
      // Whatever part of the subject is still live kept its bytes.
      if (subject !== null) {
        const keepEnd = subject.address + (scenario.keep ?? subject.size);
        for (const block of walkBlocks(bytes.blocks)) {
          if (block.kind === 'free' || block.address < subject.address || block.address >= keepEnd) continue;
          const to = Math.min(block.address + 2 ** block.order, keepEnd);
          for (let at = block.address; at < to; at++) {
            if (memory.u8[at] !== prepared[at]) throw new Error(`${where}: byte ${hex(at)} of the live part of the subject changed`);
          }
        }
      }
      // Free what nobody holds any more (the subject, a dead allocation's block), then the
      // pools must be whole again.
      let left = 0;
      for (const block of walkBlocks(bytes.blocks)) {
        if (block.kind === 'free') continue;
        if (block.kind === 'pages') pages.deallocPages(block.address, 2 ** block.order / PAGE_SIZE);
        else bytes.release(block.address);
        if (subject === null || block.address < subject.address || block.address >= subject.address + subject.size) left++;
      }
      expect(left, `${where}: blocks left live that nobody held`).toBeLessThanOrEqual(scenario.maxLeft);
      expect(freeSnapshot(bytes.blocks).sort(), where).toEqual(maximalCut(bytes));
      expect(bytes.stats(), where).toMatchObject({ usedBytes: 0, requestedBytes: 0, liveBlocks: 0 });
      bytes.check();
    }
  }, 120_000);
}

describe('buddy: a thread killed at every store of the paths the kit does not reach', () => {
  // The pool [4 MiB, 8 MiB) has a 256 KiB map and is cut into free blocks of 256 KiB at
  // 0x440000, 512 KiB at 0x480000, 1 MiB at 0x500000 and 2 MiB at 0x600000.
  killAtEveryStore({
    name: 'a 16-byte allocation splitting a 256 KiB block 14 times',
    prepare: ({ bytes }) => [
      { address: bytes.allocate(300_000, 8), size: 300_000 },
      { address: bytes.allocate(700_000, 8), size: 700_000 },
    ],
    run: ({ bytes }) => void bytes.allocate(16, 8),
    minStores: 14 * 4,
    maxLeft: 1,
  });

  killAtEveryStore({
    name: 'a free merging 14 levels back into a 256 KiB block',
    prepare: ({ bytes }) => [
      { address: bytes.allocate(300_000, 8), size: 300_000 },
      { address: bytes.allocate(10, 8), size: 10 },
    ],
    subject: 1,
    run: ({ bytes }, held) => bytes.release(held[1]!.address),
    minStores: 14 * 3,
    maxLeft: 0,
  });

  killAtEveryStore({
    name: 'a free of an upper buddy merging with a lower and then an upper buddy',
    prepare: ({ bytes }) => {
      const [a, b, c, d] = [0, 1, 2, 3].map(() => bytes.allocate(1000, 8)) as [number, number, number, number];
      expect([b - a, c - a, d - a]).toEqual([1024, 2048, 3072]);
      bytes.release(a);
      bytes.release(c);
      bytes.release(d);
      return [
        { address: bytes.allocate(50_000, 8), size: 50_000 },
        { address: b, size: 1000 },
      ];
    },
    subject: 1,
    run: ({ bytes }, held) => bytes.release(held[1]!.address),
    minStores: 10,
    maxLeft: 0,
  });

  killAtEveryStore({
    name: 'a resize growing a 32-byte block to 1 KiB over five free buddies',
    prepare: ({ bytes }) => [
      { address: bytes.allocate(5000, 8), size: 5000 },
      { address: bytes.allocate(20, 8), size: 20 },
    ],
    subject: 1,
    run: ({ bytes }, held) => expect(bytes.resizeInPlace(held[1]!.address, 1000)).toBe(true),
    minStores: 10,
    maxLeft: 0,
  });

  killAtEveryStore({
    name: 'a resize shrinking a 4 KiB block to 32 bytes, freeing seven halves',
    prepare: ({ bytes }) => [
      { address: bytes.allocate(4000, 64), size: 4000 },
      { address: bytes.allocate(100, 8), size: 100 },
    ],
    subject: 0,
    keep: 24,
    run: ({ bytes }, held) => expect(bytes.resizeInPlace(held[0]!.address, 24)).toBe(true),
    minStores: 7 * 4,
    maxLeft: 0,
  });

  killAtEveryStore({
    name: 'a resize shrinking a 256-byte block aligned to 16 to 10 bytes',
    prepare: ({ bytes }) => [
      { address: bytes.allocate(200, 16), size: 200 },
      { address: bytes.allocate(16, 8), size: 16 },
    ],
    subject: 0,
    keep: 10,
    run: ({ bytes }, held) => expect(bytes.resizeInPlace(held[0]!.address, 10)).toBe(true),
    minStores: 4 * 4,
    maxLeft: 0,
  });

  killAtEveryStore({
    name: 'allocPages(3), which splits a block and trims the run',
    prepare: ({ bytes }) => [{ address: bytes.allocate(100, 8), size: 100 }],
    run: ({ pages }) => void pages.allocPages(3, PAGE_SIZE),
    minStores: 10,
    maxLeft: 2,
  });

  killAtEveryStore({
    name: 'allocPages(5) aligned to 1 MiB',
    prepare: ({ pages }) => [{ address: pages.allocPages(2, PAGE_SIZE), size: 2 * PAGE_SIZE, pages: true }],
    run: ({ pages }) => void pages.allocPages(5, MiB),
    minStores: 10,
    maxLeft: 2,
  });

  killAtEveryStore({
    name: 'allocPagesAt of six pages across two free blocks',
    prepare: ({ bytes }) => [
      { address: bytes.allocate(64, 8), size: 64 },
      { address: bytes.allocate(MiB, 8), size: MiB },
    ],
    run: ({ pages }) => expect(pages.allocPagesAt(0x47e000, 6, PAGE_SIZE)).toBe(0x47e000),
    minStores: 20,
    maxLeft: 2,
  });

  killAtEveryStore({
    name: 'deallocPages of a five-page run of two blocks',
    prepare: ({ pages, bytes }) => [
      { address: bytes.allocate(64, 8), size: 64 },
      { address: pages.allocPages(5, PAGE_SIZE), size: 5 * PAGE_SIZE, pages: true },
      { address: pages.allocPages(1, PAGE_SIZE), size: PAGE_SIZE, pages: true },
    ],
    subject: 1,
    run: ({ pages }, held) => pages.deallocPages(held[1]!.address, 5),
    minStores: 10,
    maxLeft: 0,
  });

  killAtEveryStore({
    // Core records the pool once addMemory returns, as GlobalAllocator.addMemory does: a
    // death before the record leaves a range no pool lists, which recovery leaves out.
    name: 'addMemory of a second pool',
    pool: [ARENA_START, 2 * MiB],
    prepare: ({ bytes }) => [{ address: bytes.allocate(5000, 8), size: 5000 }],
    run: ({ bytes, record }) => {
      bytes.addMemory(ARENA_START + 2 * MiB + 4096, MiB + 100);
      record(ARENA_START + 2 * MiB + 4096, MiB + 100);
    },
    minStores: 10,
    maxLeft: 0,
  });
});

describe('buddy recover()', () => {
  const makeBuddy = (): { bytes: BuddyAllocator; pages: BuddyPageAllocator; u8: Uint8Array } => {
    const context = makeBackendContext({ arenaBytes: ARENA_BYTES, stateBytes: BUDDY_STATE_BYTES });
    const { bytes, pages } = faces(context);
    bytes.init(ARENA_START, ARENA_BYTES);
    recordPool(context.memory, ARENA_START, ARENA_BYTES);
    return { bytes, pages, u8: context.memory.u8 };
  };
  const entryOf = (address: number): number => ARENA_START + (address - ARENA_START) / UNIT_BYTES;

  it('merges free buddies it finds unmerged, and clears stale start entries', () => {
    const { bytes, u8 } = makeBuddy();
    // Split the free 256 KiB block at 0x440000 in the map only, into four 64 KiB blocks, and
    // leave a stale start entry inside one of them.
    for (let i = 0; i < 4; i++) u8[entryOf(0x440000 + i * 64 * KiB)] = FREE | 16;
    u8[entryOf(0x450000 + 4096)] = FREE | 12;
    const repair = bytes.recover({ lock: 'heap', deadThreadId: DYING_THREAD });
    expect(repair.notes.join('\n')).toMatch(/merged 3 pairs of free buddies/);
    expect(repair.notes.join('\n')).toMatch(/cleared 1 stale start/);
    expect(freeSnapshot(bytes.blocks)).toEqual(['0x440000:18', '0x480000:19', '0x500000:20', '0x600000:21']);
    bytes.check();
  });

  it('resets the digits of a block caught mid-resize, keeping the block live and intact', () => {
    const { bytes, u8 } = makeBuddy();
    const address = bytes.allocate(3000, 256);
    u8.fill(0x5a, address, address + 3000);
    u8[entryOf(address) + 1] = FREE | 4; // a freed half's entry where a digit was
    const repair = bytes.recover({ lock: 'heap', deadThreadId: DYING_THREAD });
    expect(repair.notes.join('\n')).toMatch(/1 live block\(s\) caught mid-resize/);
    expect(bytes.usableSize(address)).toBe(4096);
    expect(bytes.requestedSize(address)).toBe(4096);
    expect(bytes.blockLayout(address)).toEqual({ minSize: 4096, maxSize: 4096, minAlign: 8, maxAlign: 8 });
    expect(u8.subarray(address, address + 3000).every((byte) => byte === 0x5a)).toBe(true);
    bytes.check();
  });

  it('refuses a map that does not tile its pool, and writes nothing', () => {
    const { bytes, u8 } = makeBuddy();
    bytes.allocate(100, 8);
    u8[entryOf(0x500000)] = 0; // the 1 MiB block's start entry is gone
    const before = u8.slice();
    let error: unknown = null;
    try {
      bytes.recover({ lock: 'heap', deadThreadId: DYING_THREAD });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(AllocError);
    expect((error as AllocError).kind).toBe('HeapCorrupted');
    expect((error as AllocError).message).toContain('0x500000');
    expect(u8.every((byte, at) => byte === before[at])).toBe(true);
  });

  it('rebuilds lists and counters that were wiped, page runs included', () => {
    const { bytes, pages } = makeBuddy();
    const small = bytes.allocate(40, 8);
    const run = pages.allocPages(3, PAGE_SIZE);
    const before = bytes.stats();
    const blocks = bytes.blocks;
    // Every list, its length and the non-empty mask, and every one of core's counters; the
    // magic and core's pool table stay.
    blocks.lists.clear();
    blocks.counters.reset();
    bytes.recover({ lock: 'heap', deadThreadId: DYING_THREAD });
    expect({ ...bytes.stats(), peakUsedBytes: 0 }).toEqual({ ...before, peakUsedBytes: 0 });
    bytes.check();
    pages.deallocPages(run, 3);
    bytes.release(small);
    expect(bytes.usedBytes()).toBe(0);
  });
});
