/**
 * The one request/reply protocol between a test and its workers: the test posts
 * `{ id, task }`, the worker answers `{ id, ok: true, result }` or `{ id, ok: false, message,
 * kind? }` (the `AllocError` kind, when the failure was one). `WorkerPool` is the test's side;
 * `serveTasks` is the worker's, used by the kit's own worker and by any package's worker
 * entry with tasks of its own.
 */

import { parentPort } from 'node:worker_threads';

import { AllocError } from '@heaplab/core';

/** What a worker answers to one task. */
export type TaskReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; message: string; kind?: string; stack?: string };

/**
 * Answers every task the parent posts with `run`'s result or failure. Tasks run one after
 * another in arrival order only if `run` is synchronous; an async `run` may interleave.
 */
export function serveTasks<Task>(run: (task: Task) => unknown): void {
  parentPort?.on('message', (message: { id: number; task: Task }) => {
    Promise.resolve()
      .then(() => run(message.task))
      .then(
        (result) => parentPort!.postMessage({ id: message.id, ok: true, result } satisfies TaskReply),
        (error: unknown) => {
          const reply: TaskReply = {
            id: message.id,
            ok: false,
            message: error instanceof Error ? error.message : String(error),
            ...(error instanceof AllocError ? { kind: error.kind } : {}),
            ...(error instanceof Error && error.stack !== undefined ? { stack: error.stack } : {}),
          };
          parentPort!.postMessage(reply);
        },
      );
  });
}
