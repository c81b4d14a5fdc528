/**
 * Kill-at-every-store tests for the TLSF paths the test kit's generic operations do not
 * reach: several pools (addMemory, and a free that merges both ways in a second pool), an
 * aligned allocation that leaves a leading free block, realloc growing into part of a free
 * neighbour or absorbing all of it, the resize of an over-aligned block (whose trailer moves),
 * a refill run (`allocateRun`: with and without a gap, a padded last block, a `take` that
 * throws), and `recover` itself dying. As in `describeCrashRecovery`, each operation runs once over
 * counting views to learn its S stores, then S times more from the same bytes, dying before
 * store 0, 1, ..., S - 1; a fresh instance recovers, and the heap must pass `check()`, keep
 * every other block intact and be fully usable.
 */

import { AllocError, type HeapMemory, PoolView, StateCounters } from '@heaplab/core/backend';
import {
  dyingMemory,
  expectRunHolds,
  makeBackendContext,
  recordPool,
  type Signature,
  signBlock,
  type StoreBudget,
  ThreadDeath,
  verifyBlock,
} from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { type TlsfAllocator, tlsfBackend } from '../src/index.js';
import { MiB } from './fixture.js';

const ARENA_BYTES = 4 * MiB;
const DYING_THREAD = 2;
const RECOVERING_THREAD = 1;

interface Held {
  address: number;
  signature: Signature;
}

/** A heap prepared for one operation: what must survive it, and what it acts on. */
interface Scenario {
  /** Blocks the operation does not touch: intact and live after every death. */
  held: Held[];
  /** The block freed or resized, if any: live or free after a death, never half of each. */
  subject: Held | null;
  /** Bytes of a live subject that must keep their contents. */
  keep: number;
  /** Bytes that may stay used once every block is freed (an allocation nobody was given). */
  leakBound: number;
  /** Pools the heap may have after a death (an addMemory publishes one or does not). */
  pools: number[];
  /** A refill run's blocks, in the order `take` was given them: live after every death. */
  run?: { size: number; taken: number[] };
}

/**
 * A TLSF instance for `threadId` over `memory`, writing through `views`: core's counters and
 * pool view too, so their stores count (and die) with the backend's own.
 */
function instance(memory: HeapMemory, threadId: number, views: HeapMemory = memory): TlsfAllocator {
  const ctx = makeBackendContext({ memory, threadId, arenaBytes: ARENA_BYTES, stateBytes: tlsfBackend.stateBytes });
  return tlsfBackend.create({ ...ctx, memory: views, counters: new StateCounters(views), pools: new PoolView(views) }, {});
}

/**
 * Adds a pool as `GlobalAllocator.addMemory` does: the backend formats it, then core records
 * it in its table (through `memory`, the real views: a thread that dies inside the backend's
 * part never gets there).
 */
function addPool(tlsf: TlsfAllocator, memory: HeapMemory, start: number, size: number): void {
  tlsf.addMemory(start, size);
  recordPool(memory, start, size);
}

/** Allocates and signs `sizes` in order; returns the blocks. */
function allocateSigned(tlsf: TlsfAllocator, memory: HeapMemory, sizes: number[], align = 8): Held[] {
  return sizes.map((size, sequence) => {
    const address = tlsf.allocate(size, align);
    expect(address, `allocating ${size} bytes`).not.toBe(0);
    const signature = { writer: 7, sequence: sequence + (align > 8 ? 1000 : 0), size };
    signBlock(memory.u8, address, signature);
    return { address, signature };
  });
}

/**
 * Prepares a heap with `setup`, runs `operation` once to count its stores and let `finished`
 * check what it does when it completes, then kills it before every store and recovers.
 */
function killAtEveryStore(
  setup: (tlsf: TlsfAllocator, memory: HeapMemory) => Scenario,
  operation: (tlsf: TlsfAllocator, scenario: Scenario, memory: HeapMemory) => void,
  finished: (tlsf: TlsfAllocator, scenario: Scenario) => void,
): number {
  const ctx = makeBackendContext({ arenaBytes: ARENA_BYTES, threadId: RECOVERING_THREAD, stateBytes: tlsfBackend.stateBytes });
  makeBackendContext({ memory: ctx.memory, threadId: DYING_THREAD, arenaBytes: ARENA_BYTES });
  const memory = ctx.memory;
  const prepared = instance(memory, RECOVERING_THREAD);
  prepared.init(ctx.arenaStart, 2 * MiB);
  recordPool(memory, ctx.arenaStart, 2 * MiB);
  const scenario = setup(prepared, memory);
  const bytes = memory.u8.slice();

  const counting: StoreBudget = { stores: 0, limit: Infinity };
  operation(instance(memory, DYING_THREAD, dyingMemory(memory, counting)), scenario, memory);
  const total = counting.stores;
  expect(total, 'stores of the operation').toBeGreaterThan(0);
  finished(instance(memory, RECOVERING_THREAD), scenario);
  instance(memory, RECOVERING_THREAD).check();

  for (let limit = 0; limit < total; limit++) {
    const where = `died before store ${limit} of ${total}`;
    memory.u8.set(bytes);
    scenario.run?.taken.splice(0);
    const dying = instance(memory, DYING_THREAD, dyingMemory(memory, { stores: 0, limit }));
    expect(() => operation(dying, scenario, memory), where).toThrow(ThreadDeath);
    recoverAndUse(memory, scenario, bytes, where);
  }
  return total;
}

/** After a death: recover, check, verify, then free everything and fill and empty the heap. */
function recoverAndUse(memory: HeapMemory, scenario: Scenario, before: Uint8Array, where: string): void {
  const tlsf = instance(memory, RECOVERING_THREAD);
  const repair = tlsf.recover({ lock: 'heap', deadThreadId: DYING_THREAD });
  expect(repair.lostBytes, where).toBe(0);
  const report = tlsf.check();
  expect(scenario.pools, `${where}: pools`).toContain(report.pools);
  for (const block of scenario.held) {
    expect(verifyBlock(memory.u8, block.address, block.signature), `${where}: block at ${block.address}`).toBeNull();
    expect(tlsf.usableSize(block.address), where).toBeGreaterThanOrEqual(block.signature.size);
  }
  const subject = scenario.subject;
  let subjectLive = false;
  if (subject !== null) {
    try {
      tlsf.blockLayout(subject.address);
      subjectLive = true;
    } catch (error) {
      if (!(error instanceof AllocError) || error.kind !== 'NotAllocated') throw error;
    }
    if (subjectLive) {
      const kept = memory.u8.subarray(subject.address, subject.address + scenario.keep);
      const was = before.subarray(subject.address, subject.address + scenario.keep);
      expect(
        kept.every((byte, i) => byte === was[i]),
        `${where}: the subject keeps its first ${scenario.keep} bytes`,
      ).toBe(true);
    }
  }
  for (const block of scenario.run?.taken ?? []) {
    expect(tlsf.requestedSize(block), `${where}: run block at ${block}`).toBe(scenario.run!.size);
    tlsf.release(block);
  }
  for (const block of scenario.held) tlsf.release(block.address);
  if (subjectLive) tlsf.release(subject!.address);
  tlsf.check();
  const leaked = tlsf.usedBytes();
  expect(leaked, `${where}: bytes still used once every block is freed`).toBeLessThanOrEqual(scenario.leakBound);
  const filled: number[] = [];
  for (let address = tlsf.allocate(4096, 8); address !== 0; address = tlsf.allocate(4096, 8)) filled.push(address);
  expect(filled.length, `${where}: 4 KiB blocks that fit after recovery`).toBeGreaterThan((0.95 * (tlsf.totalBytes() - leaked)) / 4112);
  for (const address of filled) tlsf.release(address);
  expect(tlsf.check(), where).toMatchObject({ liveBlocks: leaked === 0 ? 0 : 1 });
}

/** Blocks of these sizes, every other one freed: free blocks on both sides of each live one. */
function fragmented(tlsf: TlsfAllocator, memory: HeapMemory, sizes: number[]): { held: Held[]; freed: Held[] } {
  const blocks = allocateSigned(tlsf, memory, sizes);
  const held: Held[] = [];
  const freed: Held[] = [];
  blocks.forEach((block, i) => {
    if (i % 2 === 1) {
      tlsf.release(block.address);
      freed.push(block);
    } else {
      held.push(block);
    }
  });
  return { held, freed };
}

describe('tlsf: a thread killed at every store of the paths the generic suite misses', () => {
  it('addMemory: the new pool is published whole or not at all', () => {
    const start = 4 * MiB + 3 * MiB;
    const total = killAtEveryStore(
      (tlsf, memory) => ({ held: fragmented(tlsf, memory, [100, 200, 300, 400, 500]).held, subject: null, keep: 0, leakBound: 0, pools: [1, 2] }),
      (tlsf, _scenario, memory) => addPool(tlsf, memory, start, 1 * MiB),
      (tlsf) => expect(tlsf.check().pools).toBe(2),
    );
    expect(total).toBeGreaterThanOrEqual(9);
  });

  it('free in a second pool, merging with free blocks on both sides', () => {
    killAtEveryStore(
      (tlsf, memory) => {
        addPool(tlsf, memory, 4 * MiB + 3 * MiB, 1 * MiB);
        // Fill the first pool so the blocks below come from the second.
        expect(tlsf.allocate(2 * MiB - 16 - 8, 8)).not.toBe(0);
        const { held, freed } = fragmented(tlsf, memory, [64, 96, 128, 160, 192, 224, 256]);
        expect(freed.every((block) => block.address > 4 * MiB + 3 * MiB)).toBe(true);
        const subject = held.splice(1, 1)[0]!;
        return { held, subject, keep: subject.signature.size, leakBound: 2 * MiB - 16, pools: [2] };
      },
      (tlsf, scenario) => tlsf.release(scenario.subject!.address),
      (tlsf, scenario) => {
        expect(() => tlsf.usableSize(scenario.subject!.address)).toThrow(/not the start of a live block/);
        // The freed block merged with both neighbours: one free block, the 224-byte one, the tail.
        expect(tlsf.check().freeBlocks).toBe(3);
      },
    );
  });

  it('an aligned allocation that leaves a leading free block', () => {
    killAtEveryStore(
      (tlsf, memory) => ({ held: fragmented(tlsf, memory, [40, 1000, 40, 3000, 40]).held, subject: null, keep: 0, leakBound: 8192, pools: [1] }),
      (tlsf) => void tlsf.allocate(100, 4096),
      (tlsf) => {
        const report = tlsf.check();
        const blocks = report.blocks;
        expect(report.liveBlocks).toBe(4);
        // The gap before the block is a free block of its own, and a tail follows the block.
        expect(report.freeBlocks).toBe(4);
        expect(blocks).toBe(8);
      },
    );
  });

  it('realloc growing into part of a free neighbour', () => {
    killAtEveryStore(
      (tlsf, memory) => {
        const { held } = fragmented(tlsf, memory, [200, 600, 200, 100]);
        const subject = held.shift()!;
        return { held, subject, keep: subject.signature.size, leakBound: 0, pools: [1] };
      },
      (tlsf, scenario) => expect(tlsf.resizeInPlace(scenario.subject!.address, 500)).toBe(true),
      (tlsf, scenario) => {
        expect(tlsf.usableSize(scenario.subject!.address)).toBe(504);
        expect(tlsf.check().freeBlocks).toBe(2);
      },
    );
  });

  it('realloc absorbing a whole free neighbour', () => {
    killAtEveryStore(
      (tlsf, memory) => {
        // 112-byte subject, then a 104-byte free block, then a live one.
        const { held } = fragmented(tlsf, memory, [100, 96, 100]);
        const subject = held.shift()!;
        return { held, subject, keep: subject.signature.size, leakBound: 0, pools: [1] };
      },
      (tlsf, scenario) => expect(tlsf.resizeInPlace(scenario.subject!.address, 200)).toBe(true),
      (tlsf, scenario) => {
        // Only 8 bytes would be left: the whole neighbour is taken.
        expect(tlsf.usableSize(scenario.subject!.address)).toBe(208);
        expect(tlsf.requestedSize(scenario.subject!.address)).toBe(200);
        expect(tlsf.check().freeBlocks).toBe(1);
      },
    );
  });

  it('realloc shrinking with a live next block, the tail becoming a free block', () => {
    killAtEveryStore(
      (tlsf, memory) => {
        const held = allocateSigned(tlsf, memory, [1000, 100]);
        const subject = held.shift()!;
        return { held, subject, keep: 40, leakBound: 0, pools: [1] };
      },
      (tlsf, scenario) => expect(tlsf.resizeInPlace(scenario.subject!.address, 40)).toBe(true),
      (tlsf) => expect(tlsf.check().freeBlocks).toBe(2),
    );
  });

  for (const [name, size] of [
    ['growing', 900],
    ['shrinking', 24],
    ['keeping its size', 250],
  ] as const) {
    it(`realloc of an over-aligned block ${name}, whose trailer moves or is rewritten`, () => {
      killAtEveryStore(
        (tlsf, memory) => {
          const [subject] = allocateSigned(tlsf, memory, [250], 256);
          // Then a free block right after it (1000 and 200 bytes merged), and a live one.
          const [x, y, z] = allocateSigned(tlsf, memory, [1000, 200, 300]);
          tlsf.release(y!.address);
          tlsf.release(x!.address);
          return { held: [z!], subject: subject!, keep: Math.min(size, 250), leakBound: 0, pools: [1] };
        },
        (tlsf, scenario) => expect(tlsf.resizeInPlace(scenario.subject!.address, size)).toBe(true),
        (tlsf, scenario) => {
          expect(tlsf.blockLayout(scenario.subject!.address)).toEqual({ minSize: size, maxSize: size, minAlign: 256, maxAlign: 256 });
          tlsf.check();
        },
      );
    });
  }

  /** The free block a run will be carved from: the heap's last one, after the blocks `fragmented` made. */
  function lastFreeBlock(tlsf: TlsfAllocator): number {
    let last = 0;
    tlsf.walk((region) => {
      if (region.kind === 'free') last = region.address - 8;
    });
    return last;
  }

  for (const [name, size, count, made, gap] of [
    ['of 24-byte blocks after a gap (8 bytes short of a block: a line more)', 24, 21, 20, 8],
    ['of one 520-byte block padded to its line, after a gap', 520, 1, 1, 40],
    ['of 64-byte blocks with no gap', 64, 8, 8, 0],
  ] as const) {
    it(`a refill run ${name}: the blocks taken stay live, the rest free`, () => {
      const total = killAtEveryStore(
        (tlsf, memory) => {
          const { held } = fragmented(tlsf, memory, [100, 200, 300, 400, 500]);
          // A block too big for the holes, which leaves the last free block `gap` bytes short
          // of 8 below a line, where the run's first header goes.
          const before = lastFreeBlock(tlsf);
          held.push(...allocateSigned(tlsf, memory, [504 + ((56 - gap - (before % 64) + 128) % 64)]));
          const free = lastFreeBlock(tlsf);
          expect((56 - (free % 64) + 64) % 64, `the run's free block at ${free}`).toBe(gap);
          const blockSize = size + 8;
          return { held, subject: null, keep: 0, leakBound: blockSize + 64, pools: [1], run: { size, taken: [] } };
        },
        (tlsf, scenario) => void tlsf.allocateRun(size, count, (block) => scenario.run!.taken.push(block)),
        (tlsf, scenario) => {
          const taken = scenario.run!.taken;
          expect(taken.length).toBe(made);
          expectRunHolds(tlsf, taken, size);
          for (const block of taken) expect(tlsf.blockLayout(block)).toEqual({ minSize: size, maxSize: size, minAlign: 8, maxAlign: 8 });
          tlsf.check();
        },
      );
      expect(total).toBeGreaterThan(count);
    });
  }

  it('a refill run whose take throws after two blocks lists the rest, and a death in that listing is recovered', () => {
    class Stop extends Error {}
    killAtEveryStore(
      (tlsf, memory) => ({
        held: fragmented(tlsf, memory, [100, 200, 300]).held,
        subject: null,
        keep: 0,
        leakBound: 64,
        pools: [1],
        run: { size: 32, taken: [] },
      }),
      (tlsf, scenario) => {
        const taken = scenario.run!.taken;
        try {
          tlsf.allocateRun(32, 16, (block) => {
            if (taken.length === 2) throw new Stop();
            taken.push(block);
          });
        } catch (error) {
          if (!(error instanceof Stop)) throw error;
        }
      },
      (tlsf, scenario) => {
        expect(scenario.run!.taken.length).toBe(2);
        // The two taken, the one refused, and the two held.
        expect(tlsf.check()).toMatchObject({ liveBlocks: 5 });
      },
    );
  });

  it('recover() itself, killed at every store, leaves a heap the next recover() repairs', () => {
    killAtEveryStore(
      (tlsf, memory) => {
        const { held } = fragmented(tlsf, memory, [100, 200, 300, 400, 500, 600]);
        // Leave the kind of heap a death leaves: the free that died after its commit, with
        // the block free but unmerged and on no list.
        const victim = held[1]!;
        const dying = instance(memory, DYING_THREAD, dyingMemory(memory, { stores: 0, limit: 9 }));
        expect(() => dying.release(victim.address)).toThrow(ThreadDeath);
        expect(() => tlsf.check()).toThrow(AllocError);
        return { held: held.filter((block) => block !== victim), subject: victim, keep: 0, leakBound: 0, pools: [1] };
      },
      (tlsf) => void tlsf.recover({ lock: 'heap', deadThreadId: DYING_THREAD }),
      (tlsf) => void tlsf.check(),
    );
  });
});
