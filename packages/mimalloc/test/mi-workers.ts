/** Starting the package's own test workers (`workers/mi-worker.ts`) with core's `spawnWorker`. */

import type { Worker } from 'node:worker_threads';

import { type GlobalAllocator, type ReapReport, spawnWorker } from '@heaplab/core';

import type { DieAtTask, MiTask } from './workers/mi-worker.js';

/** One worker running `mi-worker.ts`, with a promise per task. */
export class MiWorker {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly worker: Worker;

  constructor() {
    this.worker = spawnWorker(new URL('./workers/mi-worker.ts', import.meta.url));
    this.worker.on('message', (reply: { id: number; ok: boolean; result?: unknown; message?: string }) => {
      const pending = this.pending.get(reply.id);
      if (pending === undefined) return;
      this.pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply.result);
      else pending.reject(new Error(reply.message));
    });
    this.worker.on('error', (error) => this.failAll(error));
    this.worker.on('exit', () => this.failAll(new Error('a test worker exited with tasks pending')));
  }

  /** Runs a task; resolves with its result. */
  run<T>(task: MiTask): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.worker.postMessage({ id, task });
    });
  }

  /** Ends the thread (without detaching, if its handle is still attached). */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  private failAll(error: Error): void {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
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
