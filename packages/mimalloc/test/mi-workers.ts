/** Starting the package's own test workers (`workers/mi-worker.ts`) on the test kit's `WorkerPool`. */

import type { Worker } from 'node:worker_threads';

import type { GlobalAllocator, ReapReport } from '@heaplab/core';
import { WorkerPool } from '@heaplab/test-kit';

import type { DieAtTask, MiTask } from './workers/mi-worker.js';

/**
 * One worker running `mi-worker.ts`: a one-worker `WorkerPool` of the test kit on the
 * package's own entry, so the request/reply protocol is the kit's.
 */
export class MiWorker {
  private readonly pool = WorkerPool.spawn<MiTask>(new URL('./workers/mi-worker.ts', import.meta.url));

  /** The worker itself (for `watchWorker`, its thread id, its exit). */
  get worker(): Worker {
    return this.pool.workers[0]!;
  }

  /** Runs a task; resolves with its result. */
  run<T>(task: MiTask): Promise<T> {
    return this.pool.run<T>(0, task);
  }

  /** Ends the thread (without detaching, if its handle is still attached). */
  async terminate(): Promise<void> {
    await this.pool.close();
  }
}

/** How a `die-at` task ended: the worker died at its step and was reaped, or finished. */
export type DyingOutcome = { died: true; report: ReapReport } | { died: false };

/**
 * Runs a `die-at` task in a fresh worker that `heap` watches, and resolves once the worker
 * died at the task's step and was reaped (`watchWorker`), or finished the task without
 * reaching it (then it is ended and reaped too).
 */
export async function runDying(heap: GlobalAllocator, task: DieAtTask): Promise<DyingOutcome> {
  const worker = new MiWorker();
  const reaped = new Promise<ReapReport>((resolve) => heap.watchWorker(worker.worker, resolve));
  const outcome = await Promise.race<DyingOutcome>([
    reaped.then((report) => ({ died: true, report })),
    // A worker that exits rejects its task; the reaper's report decides then.
    worker.run<string>(task).then(
      (): DyingOutcome => ({ died: false }),
      () => new Promise<DyingOutcome>(() => {}),
    ),
  ]);
  if (!outcome.died) {
    await worker.terminate();
    await reaped;
  }
  return outcome;
}

/**
 * Runs a `die-at` task in a fresh worker nobody watches, and resolves with the worker's
 * Node thread id once it exited (died at the step, or finished).
 */
export async function runDyingUnwatched(task: DieAtTask): Promise<{ nodeThreadId: number; finished: boolean }> {
  const worker = new MiWorker();
  const nodeThreadId = worker.worker.threadId;
  const exited = new Promise<void>((resolve) => worker.worker.once('exit', () => resolve()));
  let finished = false;
  void worker.run<string>(task).then(
    async () => {
      finished = true;
      await worker.terminate();
    },
    () => {},
  );
  await exited;
  return { nodeThreadId, finished };
}
