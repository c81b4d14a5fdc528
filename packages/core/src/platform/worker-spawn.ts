/**
 * Starting a worker on a module URL, from the build or from the sources. Node 20 cannot start
 * a worker on a `.ts` file, so a TypeScript entry (tests and tools run from source) goes
 * through `worker-bootstrap.mjs`, which loads tsx first (about 0.2-0.4 s); a JavaScript
 * entry starts directly (about 35 ms).
 */

import { Worker } from 'node:worker_threads';

/**
 * Starts a worker on `entry`.
 * @param entry the worker module's URL (`.ts` or `.js`)
 * @param workerData data for the worker, as `workerData`
 */
export function spawnWorker(entry: URL, workerData: object = {}): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData });
  return new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), {
    workerData: { ...workerData, heaplabEntry: entry.href },
  });
}
