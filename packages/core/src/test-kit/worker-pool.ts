/**
 * Workers for tests. A `WorkerPool` starts its workers once and reuses them for many
 * scenarios, so the start-up (see `spawnWorker`) is paid once per file. It speaks the one
 * task protocol (task-protocol.ts) with the kit's own worker (`WorkerPool.start`) or with a
 * package's worker entry that has tasks of its own (`WorkerPool.spawn`, the entry calling
 * `serveTasks`).
 */

import type { Worker } from 'node:worker_threads';

import { spawnWorker } from '../platform/worker-spawn.js';

import type { KitTask } from './kit-worker.js';
import type { TaskReply } from './task-protocol.js';

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

/** A fixed set of workers that run `Task`s (the kit's `KitTask`s unless spawned on another entry). */
export class WorkerPool<Task extends { kind: string } = KitTask> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(readonly workers: Worker[]) {
    for (const worker of workers) {
      worker.on('message', (reply: TaskReply) => this.settle(reply));
      worker.on('error', (error) => this.failAll(error));
      worker.on('exit', (code) => {
        if (this.pending.size > 0) this.failAll(new Error(`a kit worker exited (code ${code}) with tasks pending`));
      });
    }
  }

  /**
   * `size` workers on `entry`, a worker module that answers through `serveTasks`. Returns at
   * once: tasks posted before a worker has loaded wait in its queue.
   */
  static spawn<Task extends { kind: string }>(entry: URL, size = 1, workerData: Record<string, unknown> = {}): WorkerPool<Task> {
    return new WorkerPool<Task>(Array.from({ length: size }, () => spawnWorker(entry, workerData)));
  }

  /** Starts `size` kit workers and waits until each has loaded. */
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
  run<T = unknown>(index: number, task: Task, timeoutMs = 120_000): Promise<T> {
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

  private settle(reply: TaskReply): void {
    const pending = this.pending.get(reply.id);
    if (pending === undefined) return;
    this.pending.delete(reply.id);
    clearTimeout(pending.timer);
    if (reply.ok) {
      pending.resolve(reply.result);
      return;
    }
    const error = new WorkerTaskError(reply.message, reply.kind);
    // The worker's own stack says where it failed; this side's says nothing useful.
    if (reply.stack !== undefined) error.stack = reply.stack;
    pending.reject(error);
  }

  private failAll(error: Error): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
      this.pending.delete(id);
    }
  }
}
