/**
 * Runs a threaded workload the way bench-malloc-thread does: the clock starts before the
 * threads exist; one thread runs in the calling thread, more run one per worker, all on the
 * same heap; a timer in the main thread raises the stop flag when the duration is over.
 */

import type { Worker } from 'node:worker_threads';

import { type CheckReport, type GlobalAllocator, type LockFigures, spawnWorker, type ThreadCacheFigures, type TraceRecorder } from '@heaplab/core';

import { type PreparedSource, prepareSource } from '../contenders/allocator-sources.js';
import type { Contender } from '../contenders/contender.js';
import { BEGUN_WORD, RUN_CONTROL_BYTES, STOP_WORD } from './address-allocator.js';
import { countTouchedPages, TOUCHED_PAGE_BYTES } from './touched-pages.js';
import { runThreadTask, type ThreadLoop, type ThreadOutcome, type ThreadReply, type ThreadTask } from './thread-loop.js';

/** One run of a threaded workload. */
export interface ThreadedRunOptions {
  contender: Contender;
  loop: ThreadLoop;
  threads: number;
  /** Seconds; Infinity for a run bounded by `maxIterations` only. */
  durationSeconds: number;
  /** Per thread; Infinity for a timed run. */
  maxIterations: number;
  verify: boolean;
  heapBytes: number;
  /** Record every thread's allocator calls into this recorder (`heaplab trace record`). */
  trace?: TraceRecorder;
  /** Told when the threads start and end (multi-thread runs): for tools that sample a run as it goes. */
  watch?: RunWatch;
}

/** A tool's view of a multi-thread run while it runs (`ThreadedRunOptions.watch`). */
export interface RunWatch {
  /** The threads were started; `runState` is the loop's shared state, `heap` the creator's handle (null without a heaplab heap). */
  started(runState: SharedArrayBuffer | null, heap: GlobalAllocator | null): void;
  /** Every thread replied; called before the heap is checked and detached. */
  ended(): void;
}

/** The figures of one run. */
export interface ThreadedRun {
  /** Sum over threads. */
  iterations: number;
  perThreadIterations: number[];
  /** Each thread's time in its loop. */
  threadSeconds: number[];
  /**
   * Each thread's CPU time over its timed part, and its time waiting for a CPU meanwhile
   * (thread-clock.ts): a thread whose CPU time is well below its loop time, or that waited,
   * shared its core. Null where not measured.
   */
  threadCpuSeconds: number[] | null;
  threadWaitSeconds: number[] | null;
  /** From the clock start (before the threads) to the last thread's end. */
  wallSeconds: number;
  /**
   * CPU time of the whole process over the same span (every thread, workers' start-up
   * included): beside `wallSeconds` it shows whether threads ran at once or took turns.
   */
  cpuSeconds: number;
  /**
   * Iterations per second while the threads ran: the sum over threads of each thread's
   * iterations over its own loop time. Unlike `iterations / wallSeconds` it leaves out a
   * worker's start-up (tens of milliseconds in Node against microseconds for a C thread),
   * which would otherwise make short multi-thread runs look slower than they are.
   */
  perSecond: number;
  /** The heap's `peakUsedBytes` (heaplab backends only). */
  peakUsedBytes: number | null;
  /** The heap's `peakUsedSampled`: the peak is a sampled lower bound (heaplab backends only). */
  peakUsedSampled: boolean;
  /**
   * Highest byte any block reached, from the arena's start. It says where a backend put its
   * blocks more than how much memory it used (buddy's first block may sit high in the arena);
   * `touchedBytes` is the measure of memory used.
   */
  peakFootprintBytes: number | null;
  /** Bytes of the arena's 4 KiB pages written during the run (see touched-pages.ts): a lower bound; null without a heap. */
  touchedBytes: number | null;
  /** `check()` of the heap after the run (heaplab backends only). */
  check: CheckReport | null;
  /**
   * The heap's locks that were taken during the run: how often, and how often a taker had to
   * wait (heaplab backends only; the figures include the few acquisitions of setting up and
   * of reading them).
   */
  locks: LockFigures[] | null;
  /** What the thread caches did (`stats().threadCache`); null without a heap or a cache. */
  threadCache: ThreadCacheFigures | null;
  /** Peak resident size, in KiB, of the process that ran it. */
  maxRssKiB: number;
}

/**
 * Runs `options.workload` on `options.threads` threads.
 * @throws Error naming the thread and the failure when any thread fails (heap full, a
 *   verify mismatch, an allocator error), or AllocError when the heap cannot be made or
 *   fails its check afterwards
 */
export async function runThreaded(options: ThreadedRunOptions): Promise<ThreadedRun> {
  const { threads, loop } = options;
  const input = loop.sharedInput();
  const runState = loop.runState?.(threads) ?? null;
  const prepared = prepareSource(options.contender, threads, options.heapBytes, options.trace);
  const stopBuffer = new SharedArrayBuffer(RUN_CONTROL_BYTES);
  const control = new Int32Array(stopBuffer);
  const task = (threadIndex: number, durationMs: number): ThreadTask => ({
    workload: loop.workload,
    source: prepared.source,
    threadIndex,
    threads,
    input,
    runState,
    stopBuffer,
    verify: options.verify,
    maxIterations: options.maxIterations,
    durationMs,
  });
  try {
    const started = performance.now();
    const cpuStarted = process.cpuUsage();
    let outcomes: ThreadOutcome[];
    if (threads === 1) {
      // The calling thread cannot see a timer fire while it loops, so it watches the clock.
      outcomes = [await runThreadTask(loop, task(0, options.durationSeconds * 1000), prepared.heap)];
    } else {
      const spawned = Array.from({ length: threads }, (_, index) => spawnThreadWorker(task(index, Infinity)));
      for (const { worker } of spawned) prepared.heap?.watchWorker(worker);
      options.watch?.started(runState, prepared.heap);
      const replies = Promise.all(spawned.map(({ reply }) => reply));
      let timer: ReturnType<typeof setTimeout> | null = null;
      if (Number.isFinite(options.durationSeconds)) {
        // The duration counts from when the last thread began timing; a thread that ends or
        // fails before beginning must not keep the others waiting for it.
        const anyReply = Promise.race(spawned.map(({ reply }) => reply));
        await Promise.race([allBegun(control, threads), anyReply]);
        // By the clock, not by one timer: a timer counts from the event loop's cached time,
        // which lags when the loop was busy, and fired up to several ms early under load.
        const stopAt = performance.now() + options.durationSeconds * 1000;
        const stopWhenDue = (): void => {
          const left = stopAt - performance.now();
          if (left > 0) timer = setTimeout(stopWhenDue, Math.ceil(left));
          else Atomics.store(control, STOP_WORD, 1);
        };
        stopWhenDue();
      }
      const settled = await replies;
      if (timer !== null) clearTimeout(timer);
      options.watch?.ended();
      outcomes = settled.map((reply, index) => {
        if (!reply.ok) throw new Error(`thread ${index + 1} of ${threads}: ${reply.message}`);
        return reply.outcome;
      });
    }
    const wallSeconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuStarted);
    const highWater = Math.max(...outcomes.map((outcome) => outcome.highWater));
    const check = prepared.heap?.check() ?? null;
    const stats = prepared.heap?.stats() ?? null;
    return {
      iterations: outcomes.reduce((sum, outcome) => sum + outcome.iterations, 0),
      perThreadIterations: outcomes.map((outcome) => outcome.iterations),
      threadSeconds: outcomes.map((outcome) => outcome.seconds),
      threadCpuSeconds: everyThread(outcomes, (outcome) => outcome.cpuSeconds),
      threadWaitSeconds: everyThread(outcomes, (outcome) => outcome.waitSeconds),
      wallSeconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      perSecond: outcomes.reduce((sum, outcome) => sum + (outcome.seconds > 0 ? outcome.iterations / outcome.seconds : 0), 0),
      peakUsedBytes: stats?.peakUsedBytes ?? null,
      peakUsedSampled: stats?.peakUsedSampled ?? false,
      peakFootprintBytes:
        prepared.footprintBase === null || highWater === 0 || (prepared.heap?.pools().length ?? 1) > 1 ? null : highWater - prepared.footprintBase,
      touchedBytes: touchedBytesOf(prepared),
      check,
      locks: stats === null ? null : stats.locks.filter((lock) => lock.acquired > 0),
      threadCache: stats?.threadCache ?? null,
      maxRssKiB: process.resourceUsage().maxRSS,
    };
  } finally {
    Atomics.store(control, STOP_WORD, 1);
    prepared.heap?.detach();
  }
}

/** `figure` of every thread, or null when a thread lacks it. */
function everyThread(outcomes: readonly ThreadOutcome[], figure: (outcome: ThreadOutcome) => number | undefined): number[] | null {
  const figures = outcomes.map(figure);
  return figures.every((value) => value !== undefined) ? (figures as number[]) : null;
}

/** The bytes of the pages of the run's arena holding a non-zero byte; null for a source without one. */
function touchedBytesOf(prepared: PreparedSource): number | null {
  const { source, footprintBase, footprintEnd } = prepared;
  if (footprintBase === null || footprintEnd === null || !('buffer' in source)) return null;
  return countTouchedPages(source.buffer, footprintBase, footprintEnd) * TOUCHED_PAGE_BYTES;
}

/**
 * Resolves once `threads` threads have begun timing (`LoopLimits.begin`), or after
 * `BEGIN_WAIT_MS`: a run whose threads never begin is stopped then rather than waited on.
 */
async function allBegun(control: Int32Array, threads: number): Promise<void> {
  const giveUp = performance.now() + BEGIN_WAIT_MS;
  for (;;) {
    const begun = Atomics.load(control, BEGUN_WORD);
    if (begun >= threads) return;
    const left = giveUp - performance.now();
    if (left <= 0) return;
    // Polled: a few milliseconds late is nothing against a run's duration, and the main
    // thread must stay free for the workers' messages meanwhile.
    await new Promise((resolve) => setTimeout(resolve, BEGIN_POLL_MS));
  }
}

/** Longest wait for a run's threads to begin timing (start-up and set-up) before its timer starts anyway. */
const BEGIN_WAIT_MS = 60_000;
const BEGIN_POLL_MS = 2;

const fromSource = import.meta.url.endsWith('.ts');

/**
 * Starts a benchmark worker on `task`; resolves with its reply, also when the worker dies.
 * Built, the worker starts on thread-worker.js directly (about 35 ms); from source (vitest,
 * or the CLI under tsx), through core's TypeScript bootstrap.
 */
function spawnThreadWorker(task: ThreadTask): { worker: Worker; reply: Promise<ThreadReply> } {
  const entry = new URL(fromSource ? './thread-worker.ts' : './thread-worker.js', import.meta.url);
  const worker = spawnWorker(entry, task);
  const reply = new Promise<ThreadReply>((resolve) => {
    worker.once('message', resolve);
    worker.once('error', (error) => resolve({ ok: false, message: `the worker failed: ${error.message}` }));
    worker.once('exit', (code) => resolve({ ok: false, message: `the worker exited with code ${code} before replying` }));
  });
  return { worker, reply };
}
