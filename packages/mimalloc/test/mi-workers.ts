/** Starting the package's own test workers (`workers/mi-worker.ts`) with core's `spawnWorker`. */

import type { Worker } from 'node:worker_threads';

import { spawnWorker } from '@heaplab/core';

import type { MiTask } from './workers/mi-worker.js';

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
