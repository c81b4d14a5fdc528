/**
 * How the producer and the consumer of a 2-thread xmalloc-test run (docs/workloads/xmalloc-test.md)
 * kept pace, run after run, for one backend, and what each of their operations cost. A
 * measurement, not a test: it prints figures and asserts nothing.
 *
 *   pnpm build && node packages/bench/dist/tools/xmalloc-rhythm.js [backend-spec] [runs] [seconds]
 *
 * Each run is one run of `bench xmalloc-test -t 2` (a fresh heap and fresh workers). While it
 * runs, the main thread reads the stack's depth every `SAMPLE_MS` (plain reads of the run's
 * state: the workers do nothing they do not do in the benchmark). Per run it prints:
 * - trip ns: a cache line's round trip between two threads just before and just after the
 *   run (tools/line-round-trip; about 100 ns when the host places the two CPUs near each
 *   other, 400 ns or more when far apart); spin ns: the slower of two threads running a
 *   register-only loop at once, before and after (a core the host gives less of is slower);
 * - M frees/s: the consumer's frees over its loop time (the benchmark's figure); wait P,
 *   wait C: each side's time waiting on the stack (the producer for room, the consumer for
 *   a batch); cpu P, cpu C: each thread's CPU time in its loop, runq P, runq C: its time
 *   waiting for a CPU (run/thread-clock.ts); ns/alloc and ns/free: the producer's CPU time
 *   per object allocated and the consumer's per object freed;
 * - depth: the stack's mean depth over the samples, the share of samples at 0 (the consumer
 *   finds nothing) and at the limit (the producer can push nothing), the peak of used bytes
 *   (100 batches are about 27 MiB), and the mean of each tenth of the run;
 * - for mimalloc, each thread's events over the run (`heapReport`, read every
 *   `REPORT_EVERY` samples while the threads run, since a heap's events are cleared when its
 *   thread detaches, so the last few milliseconds are missed): slow-path calls, blocks
 *   collected from thread_free, pages moved to the full queue, blocks freed through the
 *   delayed list, fresh pages, pages given back, remote frees and page extensions.
 */

import { Worker } from 'node:worker_threads';

import { MiB, parseBackendSpec } from '@heaplab/core';
import { heapReport, type ThreadReport } from '@heaplab/mimalloc';

import { loadBackendModules } from '../cli/backend-module-option.js';
import { resolveBackendContenders } from '../contenders/backends.js';
import { measureLineRoundTrips } from '../run/line-round-trip.js';
import { type RunWatch, runThreaded } from '../run/threaded-run.js';
import { readXmallocProgress, readXmallocStats, XMALLOC_PARAMETERS } from '../workloads/xmalloc-test/loop.js';
import { xmallocLoop } from '../workloads/xmalloc-test/workload.js';

/** Milliseconds between two reads of the depth. */
const SAMPLE_MS = 2;
/** Rounds of each sample of the line round trip measured before and after each run (tools/line-round-trip). */
const ROUND_TRIP_ROUNDS = 20_000;
/** Samples between two reads of mimalloc's events (a walk of the heap's pages: kept rare). */
const REPORT_EVERY = 25;
/** Parts of a run whose mean depth is printed. */
const PARTS = 10;
/** The events printed, in this order, with their short names. */
const EVENTS = [
  ['slowPath', 'slow'],
  ['threadFreeCollected', 'collected'],
  ['pagesFull', 'full'],
  ['delayedFreed', 'delayed'],
  ['pagesFresh', 'fresh'],
  ['pagesFreed', 'freed'],
  ['remoteFrees', 'remote'],
  ['pagesExtended', 'extended'],
] as const;

/**
 * A pure arithmetic loop (no memory but registers), as the source of an `eval` worker: its
 * time per step says how fast a core ran this thread at that moment, whatever the caches
 * and the placement of the two cores. Both workers start together and run at once, as a
 * run's two threads do; each posts its nanoseconds per step.
 */
const SPIN = `
const { parentPort, workerData } = require('node:worker_threads');
const go = new Int32Array(workerData.go);
Atomics.add(go, 1, 1);
while (Atomics.load(go, 0) === 0);
const started = performance.now();
let x = 1;
for (let i = 0; i < workerData.steps; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
parentPort.postMessage([((performance.now() - started) * 1e6) / workerData.steps, x]);
`;
/** Steps of each spin (about 30 ms at 1 ns a step). */
const SPIN_STEPS = 30_000_000;

/** Nanoseconds per step of two threads spinning at once (`SPIN`): the lower of the two, and the higher. */
async function spinTwo(): Promise<[number, number]> {
  const go = new SharedArrayBuffer(8);
  const flags = new Int32Array(go);
  const workers = [0, 1].map(() => new Worker(`(() => {${SPIN}})()`, { eval: true, workerData: { go, steps: SPIN_STEPS } }));
  const replies = workers.map(
    (worker) =>
      new Promise<number>((resolve, reject) => {
        worker.once('message', (message: [number, number]) => resolve(message[0]));
        worker.once('error', reject);
      }),
  );
  while (Atomics.load(flags, 1) < 2) await new Promise((resolve) => setTimeout(resolve, 1));
  Atomics.store(flags, 0, 1);
  try {
    const figures = await Promise.all(replies);
    return [Math.min(...figures), Math.max(...figures)];
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

/**
 * The line round trip between two threads now (the lowest of three samples), or NaN when it
 * cannot be measured (both threads on one CPU: the answer comes only when the scheduler
 * switches, and the measurement gives up).
 */
async function roundTrip(): Promise<number> {
  try {
    return Math.min(...(await measureLineRoundTrips(3, ROUND_TRIP_ROUNDS)));
  } catch {
    return NaN;
  }
}

/** The depth samples of one run, and each thread's events as last read while it ran. */
class Watcher implements RunWatch {
  readonly depths: number[] = [];
  /** By thread id: the last events read while the thread was active (a thread's events are cleared when it detaches). */
  readonly threads = new Map<number, ThreadReport>();
  private timer: ReturnType<typeof setInterval> | null = null;

  started(runState: SharedArrayBuffer | null, heap: Parameters<RunWatch['started']>[1]): void {
    if (runState === null) throw new Error('xmalloc-rhythm: the run has no state to watch');
    const mimalloc = heap !== null && heap.backendName === 'mimalloc';
    this.timer = setInterval(() => {
      this.depths.push(readXmallocProgress(runState).depth);
      if (mimalloc && this.depths.length % REPORT_EVERY === 0) this.readEvents(heap);
    }, SAMPLE_MS);
  }

  ended(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  private readEvents(heap: NonNullable<Parameters<RunWatch['started']>[1]>): void {
    for (const thread of heapReport(heap).threads) if (thread.active) this.threads.set(thread.threadId, thread);
  }
}

/** A whole number of at least 1 from argument `text`, or `fallback` when it is absent. */
function countArgument(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!(value > 0)) throw new Error(`xmalloc-rhythm: ${name} must be above 0, not '${text}'`);
  return value;
}

function fixed(value: number, digits: number): string {
  return value.toFixed(digits);
}

/** The printed columns: a header and its width (values are right-aligned under it). */
const COLUMNS = [
  ['run', 3],
  ['trip ns', 9],
  ['spin ns', 11],
  ['M frees/s', 9],
  ['wait P', 6],
  ['wait C', 6],
  ['cpu P', 5],
  ['cpu C', 5],
  ['runq P', 6],
  ['runq C', 6],
  ['ns/alloc', 8],
  ['ns/free', 7],
  ['depth', 5],
  ['at 0', 4],
  ['full', 4],
  ['peak MiB', 8],
] as const;

function line(values: readonly string[], tail: string): string {
  return `${values.map((value, index) => value.padStart(COLUMNS[index]![1])).join('  ')}  ${tail}`;
}

async function main(): Promise<void> {
  await loadBackendModules([]);
  const [specText = 'mimalloc', runsText, secondsText] = process.argv.slice(2);
  const runs = Math.floor(countArgument(runsText, 10, 'runs'));
  const seconds = countArgument(secondsText, 2, 'seconds');
  const [contender] = resolveBackendContenders([parseBackendSpec(specText)]);
  const limit = XMALLOC_PARAMETERS.stackLimit;
  console.log(`xmalloc-test, 2 threads, ${contender!.label}, ${runs} runs of ${seconds} s; depth sampled every ${SAMPLE_MS} ms (limit ${limit})`);
  console.log(
    line(
      COLUMNS.map(([header]) => header),
      'depth by tenths of the run',
    ),
  );
  const eventLines: string[] = [];
  for (let run = 1; run <= runs; run++) {
    const tripBefore = await roundTrip();
    const spinBefore = await spinTwo();
    const watcher = new Watcher();
    let state: SharedArrayBuffer | null = null;
    const outcome = await runThreaded({
      contender: contender!,
      loop: { ...xmallocLoop, runState: (threads) => (state = xmallocLoop.runState!(threads)) },
      threads: 2,
      durationSeconds: seconds,
      maxIterations: Infinity,
      verify: false,
      heapBytes: 64 * MiB,
      watch: watcher,
    });
    const tripAfter = await roundTrip();
    const spinAfter = await spinTwo();
    const [producer, consumer] = readXmallocStats(state!).threads;
    const depths = watcher.depths;
    const share = (test: (depth: number) => boolean): number => depths.filter(test).length / Math.max(1, depths.length);
    const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
    const tenths = Array.from({ length: PARTS }, (_, part) =>
      mean(depths.slice(Math.floor((part * depths.length) / PARTS), Math.floor(((part + 1) * depths.length) / PARTS))),
    );
    const cpu = outcome.threadCpuSeconds ?? [NaN, NaN];
    const runq = outcome.threadWaitSeconds ?? [NaN, NaN];
    const values = [
      String(run),
      `${fixed(tripBefore, 0)}/${fixed(tripAfter, 0)}`,
      `${fixed(Math.max(...spinBefore), 2)}/${fixed(Math.max(...spinAfter), 2)}`,
      fixed(outcome.perSecond / 1e6, 1),
      fixed(producer!.waitSeconds, 2),
      fixed(consumer!.waitSeconds, 2),
      fixed(cpu[0]!, 2),
      fixed(cpu[1]!, 2),
      fixed(runq[0]!, 2),
      fixed(runq[1]!, 2),
      fixed((cpu[0]! * 1e9) / producer!.allocated, 1),
      fixed((cpu[1]! * 1e9) / consumer!.frees, 1),
      fixed(mean(depths), 0),
      `${fixed(share((depth) => depth === 0) * 100, 0)}%`,
      `${fixed(share((depth) => depth >= limit) * 100, 0)}%`,
      fixed((outcome.peakUsedBytes ?? NaN) / MiB, 1),
    ];
    console.log(line(values, tenths.map((depth) => depth.toFixed(0)).join(' ')));
    for (const thread of watcher.threads.values()) {
      if (thread.events.remoteFrees === 0 && thread.events.slowPath === 0) continue;
      eventLines.push(`${String(run).padStart(3)}  thread ${thread.threadId}: ${EVENTS.map(([name, short]) => `${short} ${thread.events[name]}`).join(', ')}`);
    }
  }
  if (eventLines.length > 0) {
    console.log('\nmimalloc events of each thread id over each run (the producer allocates, the consumer frees remotely):');
    for (const eventLine of eventLines) console.log(eventLine);
  }
}

await main().catch((error: unknown) => {
  console.error(`xmalloc-rhythm: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
