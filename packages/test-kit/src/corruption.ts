/**
 * The corruption suite: what a backend does when a program damages its metadata. A heap is
 * built, one block is damaged the way buggy programs damage heaps (an overflow of 1 to 16
 * bytes past a block's usable end, a write after free into a freed block's first bytes,
 * garbage over a free block), and the program goes on allocating and freeing. The backend
 * may go on unharmed (the bytes hit nothing it needs) or report the damage (`HeapCorrupted`
 * from an operation or from `check()`); it must never hang, never hand out an address
 * outside the arena, and never fail with anything but an `AllocError`.
 *
 * Each trial runs in a worker with a time bound, so a backend that loops is caught as a
 * hang instead of stopping the test run.
 *
 * ```ts
 * import { describeCorruptionDetection } from '@heaplab/test-kit';
 * describeCorruptionDetection({ label: 'tlsf', backend: tlsfBackend });
 * ```
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MiB } from '@heaplab/core';
import { makeHeap, type SuiteTarget, targetDescriptor } from './conformance.js';
import type { CorruptionOutcome, CorruptionTrialTask } from './kit-worker.js';
import { WorkerPool } from './worker-pool.js';

/** The damage a trial does. */
export type CorruptionKind = 'overflow' | 'use-after-free' | 'garbage';

/** How long one trial may take before it counts as a hang. */
const TRIAL_TIMEOUT_MS = 15_000;

/** The trials: every overflow length from 1 to 16, and several seeds of the others. */
function trials(): { kind: CorruptionKind; bytes: number; seed: number }[] {
  const list: { kind: CorruptionKind; bytes: number; seed: number }[] = [];
  for (let bytes = 1; bytes <= 16; bytes++) list.push({ kind: 'overflow', bytes, seed: bytes });
  for (let seed = 1; seed <= 8; seed++) list.push({ kind: 'use-after-free', bytes: 16, seed });
  for (let seed = 1; seed <= 8; seed++) list.push({ kind: 'garbage', bytes: 64, seed });
  return list;
}

/**
 * Registers the corruption trials for `target`; the counts of each outcome are in the last
 * test's name-independent summary (`console.info`).
 */
export function describeCorruptionDetection(target: SuiteTarget): void {
  describe(`${target.label}: corrupted metadata is reported, never looped on`, () => {
    let pool: WorkerPool;
    beforeAll(async () => {
      pool = await WorkerPool.start(1, targetDescriptor(target));
    }, 60_000);
    afterAll(async () => {
      await pool?.close();
    });

    it('survives or reports every overflow, write after free and garbage, within a time bound', async () => {
      const counts: Record<CorruptionOutcome['outcome'], number> = { clean: 0, refused: 0, detected: 0, 'detected-by-check': 0 };
      for (const trial of trials()) {
        const heap = makeHeap(target, 4 * MiB);
        const task: CorruptionTrialTask = {
          kind: 'corruption-trial',
          buffer: heap.buffer,
          damage: trial.kind,
          bytes: trial.bytes,
          seed: trial.seed,
          trustModules: [heap.backendDescriptor.moduleUrl],
        };
        let result: CorruptionOutcome;
        try {
          result = await pool.run<CorruptionOutcome>(0, task, TRIAL_TIMEOUT_MS);
        } catch (error) {
          // A hang or a crash: restart the worker so the next trial has one, then fail.
          await pool.close();
          pool = await WorkerPool.start(1, targetDescriptor(target));
          throw new Error(`${trial.kind} of ${trial.bytes} bytes (seed ${trial.seed}): ${(error as Error).message}`);
        }
        counts[result.outcome]++;
        heap.detach();
      }
      console.info(`${target.label} corruption trials: ${JSON.stringify(counts)}`);
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(trials().length);
    }, 300_000);
  });
}
