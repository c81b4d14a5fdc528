/**
 * The entry of a benchmark worker: runs the `ThreadTask` in `workerData` with the loop of the
 * workload it names, posts one `ThreadReply` and ends. A failure is posted as a message (not
 * thrown), so the main thread can report which thread failed and why.
 */

import { parentPort, workerData } from 'node:worker_threads';

import { threadLoopOf } from '../workloads/index.js';
import { STOP_WORD } from './address-allocator.js';
import { runThreadTask, type ThreadReply, type ThreadTask } from './thread-loop.js';

const task = workerData as ThreadTask;
try {
  const outcome = await runThreadTask(threadLoopOf(task.workload), task);
  parentPort!.postMessage({ ok: true, outcome } satisfies ThreadReply);
} catch (error) {
  // The other threads must not run on for the whole duration after one has failed.
  Atomics.store(new Int32Array(task.stopBuffer), STOP_WORD, 1);
  parentPort!.postMessage({ ok: false, message: error instanceof Error ? error.message : String(error) } satisfies ThreadReply);
}
