/**
 * Workers for the multi-worker harness. A `WorkerPool` starts its workers once and reuses
 * them for many scenarios, so the start-up (see `spawnWorker`) is paid once per file.
 */

import type { Worker } from 'node:worker_threads';

import { spawnWorker } from '../platform/worker-spawn.js';

import type { KitReply, KitTask } from './kit-worker.js';

const fromSource = import.meta.url.endsWith('.ts');

/**
 * Starts a worker running the kit's worker entry.
 * @param workerData extra data for the worker (the kit itself needs none)
 */
export function spawnKitWorker(workerData: Record<string, unknown> = {}): Worker {
  return spawnWorker(new URL(fromSource ? './kit-worker.ts' : './kit-worker.js', import.meta.url), workerData);
}

/** The error a worker reported, rebuilt on this side with the worker's message and kind. */
export class WorkerTaskError extends Error {
  override readonly name = 'WorkerTaskError';

  constructor(
    message: string,
    readonly kind: string | undefined,
  ) {
    super(message);
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** A fixed set of kit workers that run `KitTask`s. */
export class WorkerPool {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(readonly workers: Worker[]) {
    for (const worker of workers) {
      worker.on('message', (reply: KitReply) => this.settle(reply));
      worker.on('error', (error) => this.failAll(error));
      worker.on('exit', (code) => {
        if (this.pending.size > 0) this.failAll(new Error(`a kit worker exited (code ${code}) with tasks pending`));
      });
    }
  }

  /** Starts `size` workers and waits until each has loaded. */
  static async start(size: number): Promise<WorkerPool> {
    const workers = Array.from({ length: size }, () => spawnKitWorker());
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            worker.once('online', () => resolve());
            worker.once('error', reject);
          }),
      ),
    );
    const pool = new WorkerPool(workers);
    await Promise.all(workers.map((_, index) => pool.run(index, { kind: 'ping' })));
    return pool;
  }

  /**
   * Runs `task` on worker `index`; resolves with its result.
   * @throws WorkerTaskError when the task fails in the worker, or Error after `timeoutMs`
   */
  run<T = unknown>(index: number, task: KitTask, timeoutMs = 120_000): Promise<T> {
    const worker = this.workers[index];
    if (worker === undefined) throw new Error(`the pool has no worker ${index}`);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`kit task '${task.kind}' on worker ${index} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      worker.postMessage({ id, task });
    });
  }

  /** Stops every worker. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }

  private settle(reply: KitReply): void {
    const pending = this.pending.get(reply.id);
    if (pending === undefined) return;
    this.pending.delete(reply.id);
    clearTimeout(pending.timer);
    if (reply.ok) pending.resolve(reply.result);
    else pending.reject(new WorkerTaskError(reply.message, reply.kind));
  }

  private failAll(error: Error): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
      this.pending.delete(id);
    }
  }
}
