/**
 * The entry of a replay worker: attaches to the heap, runs its thread's share of one pass
 * (replay-thread.ts), detaches (so the heap's final check sees the thread gone, as a program's
 * thread that has exited) and posts one `ReplayWorkerReply`.
 */

import { parentPort, workerData } from 'node:worker_threads';

import { GlobalAllocator } from '@heaplab/core';

import { OrderTable } from './order-table.js';
import { type PassKind, runThreadPass, type ThreadPassOutcome } from './replay-thread.js';

/** What a replay worker is started with; structured-cloneable. */
export interface ReplayWorkerTask {
  kind: PassKind;
  thread: number;
  threads: number;
  requests: Int32Array;
  heapBuffer: SharedArrayBuffer;
  tableBuffer: SharedArrayBuffer;
  /**
   * The module of the heap's backend, which the thread that made the heap chose to run: the
   * worker imports it when it is not one of heaplab's own packages (a backend from a module
   * of the user's, or a test's).
   */
  backendModuleUrl: string;
}

/** A worker's one message. */
export type ReplayWorkerReply = { ok: true; outcome: ThreadPassOutcome } | { ok: false; message: string };

const task = workerData as ReplayWorkerTask;
const table = new OrderTable(task.tableBuffer, task.threads);
let reply: ReplayWorkerReply;
try {
  const heap = await GlobalAllocator.attach(task.heapBuffer, { trustModules: [task.backendModuleUrl] });
  try {
    reply = { ok: true, outcome: runThreadPass(heap, { kind: task.kind, thread: task.thread, requests: task.requests, table }) };
  } finally {
    heap.detach();
  }
} catch (error) {
  // Attaching or detaching failed: the other threads must not wait for this one.
  table.stop();
  reply = { ok: false, message: error instanceof Error ? error.message : String(error) };
}
parentPort!.postMessage(reply);
