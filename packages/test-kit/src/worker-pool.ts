/**
 * Workers for tests. A `WorkerPool` starts its workers once and reuses them for many
 * scenarios, so the start-up (see `spawnWorker`) is paid once per file. It speaks the one
 * task protocol (task-protocol.ts) with the kit's own worker (`WorkerPool.start`) or with a
 * package's worker entry that has tasks of its own (`WorkerPool.spawn`, the entry calling
 * `serveTasks`).
 *
 * The kit's worker entry is the module beside this one: `kit-worker.ts` when the kit runs
 * from its sources (heaplab's own tests), `kit-worker.js` from the build (an installed
 * kit), so a worker never depends on the test runner resolving the `heaplab-source` condition.
 */

import type { Worker } from 'node:worker_threads';

import { type BackendDescriptor, loadedBackendModules, spawnWorker } from '@heaplab/core';

import type { KitTask } from './kit-worker.js';
import type { TaskReply } from './task-protocol.js';

const fromSource = import.meta.url.endsWith('.ts');
const KIT_WORKER_ENTRY = new URL(fromSource ? './kit-worker.ts' : './kit-worker.js', import.meta.url);

/** What a worker must be told about the backend it will attach to. */
export interface KitWorkerOptions {
  /**
   * Module URLs of the backends the worker imports when it attaches: a `.ts` one (a backend
   * run from its sources, in heaplab or outside it) needs the worker started with a
   * TypeScript loader.
   */
  backendModules: readonly string[];
}

/** The worker options for a backend: its module, or none when the worker attaches to no heap. */
export function kitWorkerOptions(descriptor?: Pick<BackendDescriptor, 'moduleUrl'>): KitWorkerOptions {
  return { backendModules: descriptor === undefined ? [] : [descriptor.moduleUrl] };
}

/**
 * Starts a worker on `entry` that loads the backend modules of `options` before it runs
 * (core's `spawnWorker` starts it through its bootstrap, with tsx when a module is a `.ts`
 * file, so a backend run from its sources works from the built kit too).
 */
function spawnFor(entry: URL, workerData: Record<string, unknown>, options: KitWorkerOptions): Worker {
  // The modules this thread loaded too, as spawnWorker's default would give.
  return spawnWorker(entry, workerData, { backendModules: [...loadedBackendModules(), ...options.backendModules] });
}

/**
 * Starts a worker running the kit's worker entry.
 * @param workerData extra data for the worker (the kit itself needs none)
 * @param backend the backend the worker will attach to, so that it can load its module
 */
export function spawnKitWorker(workerData: Record<string, unknown> = {}, backend?: Pick<BackendDescriptor, 'moduleUrl'>): Worker {
  return spawnFor(KIT_WORKER_ENTRY, workerData, kitWorkerOptions(backend));
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
   * @param backend the backend the workers will attach to, so that they can load its module
   */
  static spawn<Task extends { kind: string }>(
    entry: URL,
    size = 1,
    workerData: Record<string, unknown> = {},
    backend?: Pick<BackendDescriptor, 'moduleUrl'>,
  ): WorkerPool<Task> {
    const options = kitWorkerOptions(backend);
    return new WorkerPool<Task>(Array.from({ length: size }, () => spawnFor(entry, workerData, options)));
  }

  /**
   * Starts `size` kit workers and waits until each has loaded.
   * @param backend the backend the workers will attach to, so that they can load its module
   */
  static async start(size: number, backend?: Pick<BackendDescriptor, 'moduleUrl'>): Promise<WorkerPool> {
    const workers = Array.from({ length: size }, () => spawnKitWorker({}, backend));
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
