/**
 * Starting benchmark workers: built, on `bench-worker.js` directly (about 35 ms); from source
 * (vitest, or the CLI under tsx), through core's TypeScript bootstrap.
 */

import type { Worker } from 'node:worker_threads';

import { spawnWorker } from '@heaplab/core';

import type { ThreadReply, ThreadTask } from './thread-task.js';

const fromSource = import.meta.url.endsWith('.ts');

/** Starts a worker on `task`; resolves with its reply, rejects if the worker dies. */
export function spawnThreadWorker(task: ThreadTask): { worker: Worker; reply: Promise<ThreadReply> } {
  const entry = new URL(fromSource ? './thread-worker.ts' : './thread-worker.js', import.meta.url);
  const worker = spawnWorker(entry, task);
  const reply = new Promise<ThreadReply>((resolve) => {
    worker.once('message', resolve);
    worker.once('error', (error) => resolve({ ok: false, message: `the worker failed: ${error.message}` }));
    worker.once('exit', (code) => resolve({ ok: false, message: `the worker exited with code ${code} before replying` }));
  });
  return { worker, reply };
}
