/**
 * A thread killed at any step of a remote free (issue #12): real workers end their thread
 * (`process.exit()` from a step hook, so no `finally` runs) at each named step, into a page
 * with room (thread_free) and into a full page (the delayed list, `DELAYED_FREEING`), and the
 * reaper (`watchWorker`) finishes or rolls back what they left. The block is freed exactly
 * once, nothing is lost, no page stays in `DELAYED_FREEING`, check() passes, and the owner's
 * detach does not wait for the dead thread.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';
import { expectAllocError } from '@heaplab/test-kit';

import { collect, type MiStep, mimallocBackend } from '../src/index.js';
import { NO_DELAYED_FREE, USE_DELAYED_FREE } from '../src/layout.js';
import { delayedState } from './helpers.js';
import { runDying, runDyingUnwatched } from './mi-workers.js';

/** Every step of a remote free, in order (see `MiStep`). */
const REMOTE_STEPS: MiStep[] = [
  'remote:buffered',
  'remote:pushing',
  'remote:claiming',
  'remote:marked',
  'remote:pushed',
  'remote:claimed',
  'remote:delaying',
  'remote:delayed',
  'remote:released',
];
/**
 * The steps a free into a page with room reaches; a free into a full page reaches the others
 * and the marker's. Outside secure mode the free goes into the thread's remote-free buffer
 * first ('remote:buffered', then the marker), and the worker's flush takes the steps.
 */
const THREAD_FREE_STEPS = new Set<MiStep>(['remote:pushing', 'remote:marked', 'remote:pushed']);
const BUFFER_STEPS = new Set<MiStep>(['remote:buffered', 'remote:marked']);

function diesAt(step: MiStep, full: boolean, buffered: boolean): boolean {
  if (buffered && BUFFER_STEPS.has(step)) return true;
  if (!buffered && step === 'remote:buffered') return false;
  return full ? !THREAD_FREE_STEPS.has(step) || step === 'remote:marked' : THREAD_FREE_STEPS.has(step);
}

const MODES: [string, Record<string, unknown>][] = [
  ['mimalloc', {}],
  ['delayedPageReuse', { delayedPageReuse: true }],
  ['secure', { secure: true }],
];

/** Writes a pattern from the address into words 2.. of a 64-byte block (a free overwrites 0 and 1). */
function sign(heap: GlobalAllocator, block: number): void {
  for (let i = 2; i < 16; i++) heap.memory.u32[(block >>> 2) + i] = Math.imul(block, 31) + i;
}

function intact(heap: GlobalAllocator, block: number): boolean {
  for (let i = 2; i < 16; i++) if (heap.memory.u32[(block >>> 2) + i] !== (Math.imul(block, 31) + i) >>> 0) return false;
  return true;
}

/**
 * A heap whose main thread owns `count` signed 64-byte blocks: 100 leave their page room;
 * 1100 fill the first page, which the owner's slow path then moved to its full queue.
 */
function ownedBlocks(options: Record<string, unknown>, count: number): { heap: GlobalAllocator; blocks: number[] } {
  const heap = GlobalAllocator.create({ backend: mimallocBackend, options, heapBytes: 16 * MiB });
  const blocks = Array.from({ length: count }, () => heap.malloc(64));
  for (const block of blocks) sign(heap, block);
  return { heap, blocks };
}

/** The victim is free (exactly once), the rest intact; then everything goes back. */
function expectRepaired(heap: GlobalAllocator, blocks: number[], liveBefore: number, where: string): void {
  heap.check();
  const victim = blocks[0]!;
  expect(heap.stats().liveBlocks, where).toBe(liveBefore - 1);
  expectAllocError(() => heap.free(victim), 'NotAllocated');
  for (const block of blocks.slice(1)) expect(intact(heap, block), `${where}: block ${block}`).toBe(true);
  for (const block of blocks.slice(1)) heap.free(block);
  collect(heap, true);
  heap.check();
  expect(heap.usedBytes(), where).toBe(0);
}

describe('a worker killed inside a remote free', () => {
  for (const [label, options] of MODES) {
    it(`(${label}) at every step, into a page with room and a full page: freed once, nothing lost, no wait`, async () => {
      let deaths = 0;
      for (const full of [false, true]) {
        for (const step of REMOTE_STEPS) {
          const where = `${label}, ${full ? 'full page' : 'page with room'}, died at ${step}`;
          const { heap, blocks } = ownedBlocks(options, full ? 1100 : 100);
          expect(delayedState(heap, blocks[0]!), where).toBe(full ? USE_DELAYED_FREE : NO_DELAYED_FREE);
          const liveBefore = heap.stats().liveBlocks;
          const outcome = await runDying(heap, { kind: 'die-at', buffer: heap.buffer, step, operation: 'free', addresses: [blocks[0]!] });
          expect(outcome.died, where).toBe(diesAt(step, full, options.secure !== true));
          if (outcome.died) {
            deaths++;
            expect(outcome.report.failed, where).toEqual([]);
            expect(outcome.report.threads, where).toHaveLength(1);
          }
          expect(heap.stats().recovery.lostBytes, where).toBe(0);
          expectRepaired(heap, blocks, liveBefore, where);
          const started = performance.now();
          heap.detach();
          // Only catches a wait for the dead thread (10 s); never a speed assertion.
          expect(performance.now() - started, `${where}: the owner's detach`).toBeLessThan(2_000);
        }
      }
      // Buffered: 4 steps into a page with room, 7 into a full one; secure: 3 and 6.
      expect(deaths).toBe(options.secure === true ? 9 : 11);
    }, 120_000);
  }

  for (const [label, options] of MODES.filter(([, modeOptions]) => modeOptions.secure !== true)) {
    it(`(${label}) inside a chain of three buffered frees, as it fills and at every step of its push: each block entered freed once`, async () => {
      // [step, occurrence, blocks entered in the buffer when the thread dies there]
      const filling: [MiStep, number, number][] = [
        ['remote:buffered', 2, 2],
        ['remote:marked', 3, 3],
      ];
      const pushing: [MiStep, number, number][] = [
        ['remote:pushing', 1, 3],
        ['remote:pushed', 1, 3],
      ];
      const delivering: [MiStep, number, number][] = [
        ['remote:claiming', 1, 3],
        ['remote:claimed', 1, 3],
        ['remote:delaying', 1, 3],
        ['remote:delayed', 1, 3],
        ['remote:released', 1, 3],
      ];
      for (const full of [false, true]) {
        for (const [step, occurrence, entered] of [...filling, ...(full ? delivering : pushing)]) {
          const where = `${label}, ${full ? 'full page' : 'page with room'}, died at ${step} #${occurrence}`;
          const { heap, blocks } = ownedBlocks(options, full ? 1100 : 100);
          const liveBefore = heap.stats().liveBlocks;
          const victims = blocks.slice(0, 3);
          const outcome = await runDying(heap, { kind: 'die-at', buffer: heap.buffer, step, occurrence, operation: 'free', addresses: victims });
          expect(outcome.died, where).toBe(true);
          expect(heap.stats().recovery.lostBytes, where).toBe(0);
          heap.check();
          expect(heap.stats().liveBlocks, where).toBe(liveBefore - entered);
          for (const block of victims.slice(0, entered)) expectAllocError(() => heap.free(block), 'NotAllocated');
          for (const block of blocks.slice(entered)) expect(intact(heap, block), `${where}: block ${block}`).toBe(true);
          for (const block of blocks.slice(entered)) heap.free(block);
          collect(heap, true);
          heap.check();
          expect(heap.usedBytes(), where).toBe(0);
          heap.detach();
        }
      }
    }, 120_000);
  }

  it('finishes the free whose CAS had not happened though the owner collected before the reaper came', async () => {
    const { heap, blocks } = ownedBlocks({}, 100);
    const liveBefore = heap.stats().liveBlocks;
    const { nodeThreadId, finished } = await runDyingUnwatched({
      kind: 'die-at',
      buffer: heap.buffer,
      step: 'remote:pushing',
      operation: 'free',
      addresses: [blocks[0]!],
    });
    expect(finished).toBe(false);
    collect(heap);
    const report = heap.releaseThreadsOf(nodeThreadId);
    expect(report.failed).toEqual([]);
    expect(heap.stats().recovery.lostBytes).toBe(0);
    expectRepaired(heap, blocks, liveBefore, 'died before the CAS, collected, then reaped');
    heap.detach();
  });

  it('counts the block lost when the owner took the list after the CAS, before the reaper could tell', async () => {
    const { heap, blocks } = ownedBlocks({}, 100);
    const liveBefore = heap.stats().liveBlocks;
    const { nodeThreadId } = await runDyingUnwatched({
      kind: 'die-at',
      buffer: heap.buffer,
      step: 'remote:pushed',
      operation: 'free',
      addresses: [blocks[0]!],
    });
    // The owner collects the pushed block; the dead thread's record still says "pushing".
    collect(heap);
    const report = heap.releaseThreadsOf(nodeThreadId);
    expect(report.failed).toEqual([]);
    // Whether the CAS happened cannot be known now: the block is never freed twice, and its
    // bytes are reported (here it was in fact freed).
    expect(heap.stats().recovery).toMatchObject({ lostBytes: 64, lostBlocks: 1 });
    expectRepaired(heap, blocks, liveBefore, 'died after the CAS, collected, then reaped');
    heap.detach();
  });
});
