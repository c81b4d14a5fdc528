/**
 * Crash recovery of the basic heap: the test kit's suite (a thread killed at every store of
 * malloc, free and realloc) on every strategy, then the same exact deaths at every store of
 * a refill run (`allocateRun`), which carves block after block and hands each to the cache
 * before the next: after each death a fresh instance recovers; the heap must pass check(),
 * keep every other block and every block the run handed over intact, and hold, once all of
 * them are freed, at most the one block the run had carved but not handed over.
 */

import { describe, expect, it } from 'vitest';

import {
  describeCrashRecovery,
  dyingMemory,
  fillPattern,
  findPatternMismatch,
  makeBackendContext,
  Random,
  recordPool,
  type Signature,
  signBlock,
  type StoreBudget,
  ThreadDeath,
  verifyBlock,
} from '@heaplab/test-kit';
import { type BackendContext, type HeapMemory, PoolView, StateCounters } from '../../src/backend/index.js';
import { BASIC_STRATEGIES, type BasicAllocator, basicBackend, type BasicStrategy } from '../../src/basic/index.js';
import { blockBytes } from '../../src/basic/layout.js';
import { hex } from '../../src/errors.js';
import { MiB, RUN_LINE_BYTES } from '../../src/sizes.js';

for (const strategy of BASIC_STRATEGIES) {
  describeCrashRecovery({ label: `basic (${strategy})`, backend: basicBackend, options: { strategy } });
}

const ARENA_BYTES = MiB;
const DYING_THREAD = 2;

/** A basic instance over `context`, every access (core's counters and pool view too) through `views`. */
function basicOver(context: BackendContext, strategy: BasicStrategy, views: HeapMemory = context.memory): BasicAllocator {
  return basicBackend.create(
    { ...context, memory: views, counters: new StateCounters(views), pools: new PoolView(views) },
    basicBackend.normalizeOptions({ strategy }),
  );
}

interface Held {
  address: number;
  signature: Signature;
}

interface RunScenario {
  name: string;
  /** Builds the heap the run is cut from; returns the blocks live across it. */
  prepare: (basic: BasicAllocator) => number[];
  size: number;
  count: number;
}

const SCENARIOS: RunScenario[] = [
  {
    // Blocks of mixed sizes, every third freed: holes on both sides of the rest of the pool,
    // and a run cut with a gap before it or not, as the strategy picks.
    name: 'a run of 8 64-byte blocks in a fragmented heap',
    prepare: (basic) => {
      const random = new Random(7);
      const all: number[] = [];
      for (let i = 0; i < 24; i++) all.push(basic.allocate(i % 5 === 4 ? random.int(600, 3000) : random.int(16, 300), 8));
      return all.filter((block, index) => {
        if (index % 3 !== 2) return true;
        basic.release(block);
        return false;
      });
    },
    size: 64,
    count: 8,
  },
  {
    // A run freed between two live blocks leaves a hole of exactly a run and the 56-byte gap
    // before it: the next run takes the hole whole (a gap and no tail) in every strategy that
    // picks it, and the rest of the pool otherwise.
    name: 'a run of 21 24-byte blocks into a hole of exactly its size',
    prepare: (basic) => {
      const hole: number[] = [];
      basic.allocateRun(24, 21, (block) => hole.push(block));
      const live = [basic.allocate(100, 8)];
      for (const block of hole) basic.release(block);
      return live;
    },
    size: 24,
    count: 21,
  },
  {
    name: 'a run of 2 200-byte blocks after a live block',
    prepare: (basic) => [basic.allocate(40, 8), basic.allocate(500, 8)],
    size: 200,
    count: 2,
  },
];

describe('basic: a thread killed at every store of allocateRun', () => {
  for (const strategy of BASIC_STRATEGIES) {
    for (const scenario of SCENARIOS) {
      it(`${strategy}: ${scenario.name} leaves a heap recover() repairs, with the blocks handed over intact`, () => {
        const context = makeBackendContext({ arenaBytes: ARENA_BYTES, stateBytes: basicBackend.stateBytes });
        const memory = context.memory;
        const setup = basicOver(context, strategy);
        setup.init(context.arenaStart, ARENA_BYTES);
        recordPool(memory, context.arenaStart, ARENA_BYTES);
        const held: Held[] = scenario.prepare(setup).map((address, sequence) => {
          const signature = { writer: 5, sequence, size: setup.usableSize(address) };
          signBlock(memory.u8, address, signature);
          return { address, signature };
        });
        setup.check();
        const prepared = memory.u8.slice();
        const { size, count } = scenario;

        /** Runs the run over views that die at `budget`; returns the blocks handed over and whether it died. */
        const runDying = (budget: StoreBudget): { taken: number[]; died: boolean; made: number } => {
          memory.u8.set(prepared);
          const taken: number[] = [];
          try {
            const made = basicOver(context, strategy, dyingMemory(memory, budget)).allocateRun(size, count, (block) => {
              // The cache writes the block it is given (through the plain views: not the backend's stores).
              fillPattern(memory.u8, block, size, taken.length);
              taken.push(block);
            });
            return { taken, died: false, made };
          } catch (error) {
            if (error instanceof ThreadDeath) return { taken, died: true, made: -1 };
            throw error;
          }
        };
        const counting: StoreBudget = { stores: 0, limit: Infinity };
        const whole = runDying(counting);
        expect(whole.made, `${scenario.name}: blocks made without a death`).toBe(whole.taken.length);
        expect(whole.made).toBeGreaterThan(0);
        const total = counting.stores;
        expect(total, `${scenario.name}: stores`).toBeGreaterThanOrEqual(whole.made * 4);
        const lastBytes = blockBytes(size) + RUN_LINE_BYTES + 16;

        for (let limit = 0; limit < total; limit++) {
          const where = `${strategy}, ${scenario.name}, died before store ${limit} of ${total}`;
          const { taken, died } = runDying({ stores: 0, limit });
          expect(died, where).toBe(true);
          const basic = basicOver(context, strategy);
          const repair = basic.recover({ lock: 'heap', deadThreadId: DYING_THREAD });
          expect(repair.lostBytes, where).toBe(0);
          basic.check();
          for (const block of held) {
            expect(verifyBlock(memory.u8, block.address, block.signature), `${where}: block at ${hex(block.address)}`).toBeNull();
            basic.release(block.address);
          }
          // Blocks handed over are live and kept what their taker wrote; they are the run's
          // first blocks, in address order.
          expect(taken, where).toEqual(whole.taken.slice(0, taken.length));
          for (const [seed, block] of taken.entries()) {
            expect(basic.usableSize(block), `${where}: block ${hex(block)}`).toBeGreaterThanOrEqual(size);
            expect(findPatternMismatch(memory.u8, block, size, seed), `${where}: block ${hex(block)}`).toBe(-1);
            basic.release(block);
          }
          basic.check();
          // At most the block carved when the thread died is live: nobody holds it.
          expect(basic.usedBytes(), `${where}: bytes still used once every held block is freed`).toBeLessThanOrEqual(lastBytes);
          expect(basic.stats().liveBlocks, where).toBeLessThanOrEqual(1);
        }
      });
    }
  }
});
