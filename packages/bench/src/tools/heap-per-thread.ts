/**
 * What two threads of bench-malloc-thread lose by sharing one heap: the same loop, run by two
 * threads on one heap, then by two threads on a heap each (nothing shared: no lock, no backend
 * structure, no block one thread frees and the other gets), taken in turn, each pair between
 * two measurements of a cache line's round trip between the two cores (run/line-round-trip.ts;
 * docs/speed.md, "When two threads are slow"). A measurement, not a test: it prints figures and
 * asserts nothing.
 *
 *   pnpm build && node packages/bench/dist/tools/heap-per-thread.js [backend-spec] [pairs] [seconds] [size cap]
 *
 * Defaults: tlsf, 3 pairs, 1 s a run, no cap. A size cap (say 1024) clamps every request of
 * the size table to it, which leaves out the large blocks that a locked backend serves under
 * its lock from memory both threads share. Run it while nothing else runs, so that each
 * thread has a core. The two threads start together (a start line in a shared word) after
 * their warm-up; each reports its iterations and its own CPU time (thread-clock.ts).
 */

import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import { type BackendSpec, GlobalAllocator, parseBackendSpec } from '@heaplab/core';

import { loadBackendModules } from '../cli/backend-module-option.js';
import { createBackendHeap, discoverBackends, resolveBackendContenders } from '../contenders/backends.js';
import { loopMemory } from '../run/address-allocator.js';
import { FAR_ROUND_TRIP_NS, measureLineRoundTrip } from '../run/line-round-trip.js';
import { readThreadClock } from '../run/thread-clock.js';
import { LoopState, runBatch } from '../workloads/glibc-thread/loop.js';
import { buildRequestTables, capRequestSizes } from '../workloads/glibc-thread/request-tables.js';

const HEAP_BYTES = 64 * 1024 * 1024;
/** Iterations between two looks at the clock (as the bench's loop: loop.ts). */
const BATCH = 1024;
/** Batches each thread runs before the start line: the loop compiled, the heap warm. */
const WARM_UP_BATCHES = 300;
/** Start-line words: threads ready, then the go signal. */
const READY = 0;
const GO = 1;
/** A thread that is not ready within this is an error, not a hang. */
const TIMEOUT_MS = 20_000;

interface ThreadTask {
  spec: BackendSpec;
  /** The heap both threads share, or null: the thread makes a heap of its own. */
  shared: SharedArrayBuffer | null;
  startLine: SharedArrayBuffer;
  seconds: number;
  sizeCap: number;
}

interface ThreadFigures {
  iterations: number;
  seconds: number;
  /** The thread's own CPU time, or -1 when the system does not say. */
  cpuNs: number;
}

/** One thread's run (in a worker): open or make the heap, warm up, wait for the start, loop. */
async function runThread(task: ThreadTask): Promise<ThreadFigures> {
  await discoverBackends();
  const heap = task.shared === null ? createBackendHeap(task.spec, HEAP_BYTES) : await GlobalAllocator.attach(task.shared);
  if (task.shared === null) heap.prefault();
  const memory = loopMemory(heap.buffer);
  const tables = buildRequestTables();
  if (task.sizeCap > 0) capRequestSizes(tables, task.sizeCap);
  const state = new LoopState();
  for (let batch = 0; batch < WARM_UP_BATCHES; batch++) runBatch(heap, memory, tables, state, BATCH, false);
  const line = new Int32Array(task.startLine);
  Atomics.add(line, READY, 1);
  const giveUpAt = performance.now() + TIMEOUT_MS;
  while (Atomics.load(line, GO) === 0) {
    if (performance.now() > giveUpAt) throw new Error('heap-per-thread: the start signal never came');
    Atomics.wait(line, GO, 0, 10);
  }
  const clock = readThreadClock();
  const first = state.iterations;
  const started = performance.now();
  const deadline = started + task.seconds * 1000;
  while (performance.now() < deadline) runBatch(heap, memory, tables, state, BATCH, false);
  const seconds = (performance.now() - started) / 1000;
  const after = readThreadClock();
  heap.detach();
  return { iterations: state.iterations - first, seconds, cpuNs: clock === null || after === null ? -1 : after.cpuNs - clock.cpuNs };
}

/** Two threads' run, on one heap (`shared`) or a heap each. */
async function runPair(spec: BackendSpec, shared: boolean, seconds: number, sizeCap: number): Promise<ThreadFigures[]> {
  const heap = shared ? createBackendHeap(spec, HEAP_BYTES) : null;
  heap?.prefault();
  const startLine = new SharedArrayBuffer(8);
  const line = new Int32Array(startLine);
  const task: ThreadTask = { spec, shared: heap?.buffer ?? null, startLine, seconds, sizeCap };
  const workers = [0, 1].map(() => new Worker(new URL(import.meta.url), { workerData: task }));
  const results = workers.map(
    (worker) =>
      new Promise<ThreadFigures>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`heap-per-thread: a thread exited with code ${code} before reporting`)));
      }),
  );
  try {
    const giveUpAt = performance.now() + TIMEOUT_MS;
    while (Atomics.load(line, READY) < 2) {
      if (performance.now() > giveUpAt) throw new Error('heap-per-thread: the threads did not get ready');
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 5)), ...results]);
    }
    Atomics.store(line, GO, 1);
    Atomics.notify(line, GO);
    const figures = await Promise.all(results);
    // Both threads detached: the shared heap must still be whole.
    heap?.check();
    return figures;
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

const millions = (perSecond: number): string => `${(perSecond / 1e6).toFixed(1)} M`;

/** "46.8 M/s  (23.5 M 41.2 ns, 23.3 M 41.9 ns)": the pair's total, then each thread's rate and CPU per iteration. */
function describe(figures: readonly ThreadFigures[]): { total: number; text: string } {
  const total = figures.reduce((sum, thread) => sum + thread.iterations / thread.seconds, 0);
  const threads = figures.map((thread) => {
    const cpu = thread.cpuNs < 0 ? '' : ` ${(thread.cpuNs / thread.iterations).toFixed(1)} ns`;
    return `${millions(thread.iterations / thread.seconds)}${cpu}`;
  });
  return { total, text: `${millions(total)}/s (${threads.join(', ')})` };
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!;

/** A whole number of at least `min` from argument `text`, or `fallback` when it is absent. */
function numberArgument(text: string | undefined, fallback: number, name: string, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) throw new Error(`heap-per-thread: ${name} must be a number of at least ${min}, not '${text}'`);
  return value;
}

async function main(args: string[]): Promise<void> {
  const [specText = 'tlsf', pairsText, secondsText, capText] = args;
  const pairs = Math.trunc(numberArgument(pairsText, 3, 'pairs', 1));
  const seconds = numberArgument(secondsText, 1, 'seconds', 0.1);
  const sizeCap = Math.trunc(numberArgument(capText, 0, 'size cap', 0));
  await loadBackendModules([]);
  await discoverBackends();
  const [row] = resolveBackendContenders([parseBackendSpec(specText)]);
  console.log(`bench-malloc-thread, ${row!.label}, 2 threads, ${seconds} s a run${sizeCap > 0 ? `, sizes capped at ${sizeCap} bytes` : ''}`);
  console.log('(rates: the pair, then each thread with its CPU per iteration; round trips in ns)');
  const byPlacement = new Map<string, { one: number[]; each: number[] }>();
  for (let pair = 1; pair <= pairs; pair++) {
    const before = await measureLineRoundTrip();
    const one = describe(await runPair(row!.spec, true, seconds, sizeCap));
    const each = describe(await runPair(row!.spec, false, seconds, sizeCap));
    const after = await measureLineRoundTrip();
    const placement = Math.max(before, after) >= FAR_ROUND_TRIP_NS ? (Math.min(before, after) >= FAR_ROUND_TRIP_NS ? 'far' : 'mixed') : 'near';
    console.log(`pair ${pair}: round trip ${before.toFixed(0)} then ${after.toFixed(0)} (${placement})`);
    console.log(`  one heap:   ${one.text}`);
    console.log(`  a heap each: ${each.text}`);
    const figures = byPlacement.get(placement) ?? { one: [], each: [] };
    figures.one.push(one.total);
    figures.each.push(each.total);
    byPlacement.set(placement, figures);
  }
  for (const [placement, { one, each }] of byPlacement) {
    const ratio = median(one) / median(each);
    console.log(
      `${placement}, ${one.length} pair${one.length === 1 ? '' : 's'}: one heap ${millions(median(one))}/s, a heap each ${millions(median(each))}/s (medians)`,
    );
    console.log(`  one heap / a heap each: ${ratio.toFixed(2)}x`);
  }
}

if (isMainThread) {
  try {
    await main(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  }
} else {
  parentPort!.postMessage(await runThread(workerData as ThreadTask));
}
