/**
 * The per-thread part of a workload that runs on threads, the message a benchmark worker is
 * started with, and the code that runs one thread's share (in a worker, or in the calling
 * thread for one thread).
 */

import type { GlobalAllocator } from '@heaplab/core';

import { type AllocatorSource, openThreadAllocator } from '../contenders/allocator-sources.js';
import { type AddressAllocator, BEGUN_WORD, type LoopLimits, type LoopMemory } from './address-allocator.js';
import { readThreadClock, type ThreadClock } from './thread-clock.js';

/** Which thread of a run this is, and how it runs. */
export interface ThreadParams {
  /** 0-based; picks the bump region, the lock owner id and a per-thread seed. */
  threadIndex: number;
  /** Threads of the run, this one included. */
  threads: number;
  /** Check every block's bytes before freeing it, where the loop fills its blocks. */
  verify: boolean;
  /**
   * The run's own shared buffer (`ThreadLoop.runState`), the same for every thread of one
   * run: how threads of a workload with remote frees hand blocks to each other. Null when
   * the loop has none.
   */
  runState: SharedArrayBuffer | null;
  /**
   * Skip the loop's final clean-up: blocks still live when the loop ends stay live, so that
   * a heap map "at 100%" (`heaplab map`, `heaplab stats`) shows the heap as the workload left
   * it rather than emptied. Frees that are part of the workload itself still happen. Absent
   * (false) in benchmark runs, which check that the heap ends empty.
   */
  leaveLive?: boolean;
}

/** One thread's figures. */
export interface ThreadOutcome {
  /** Iterations (or whatever the workload counts: alloc-pairs counts pairs). */
  iterations: number;
  /** This thread's time in its loop, in seconds. */
  seconds: number;
  /** One past the highest byte a block reached; 0 when not tracked. */
  highWater: number;
  /**
   * This thread's CPU time from the start of its timed part to the loop's return (a loop's
   * clean-up after timing, if it has one, included), and its time waiting for a CPU meanwhile,
   * in seconds (thread-clock.ts); set by `runThreadTask`, absent where not measurable.
   */
  cpuSeconds?: number;
  waitSeconds?: number;
}

/** A workload's per-thread loop. */
export interface ThreadLoop {
  /** The workload's name: a worker or an isolated process finds the loop by it. */
  readonly workload: string;
  /**
   * Input every thread reads, built once per process before anything is timed (glibc-thread's
   * tables); workers read the main thread's copy. Null for a loop that needs none.
   */
  sharedInput(): SharedArrayBuffer | null;
  /**
   * A fresh buffer for one run of `threads` threads (see `ThreadParams.runState`), made by
   * the main thread before the threads start; absent for a loop whose threads share nothing.
   */
  runState?(threads: number): SharedArrayBuffer;
  /**
   * True when `run` has an untimed set-up (alloc-test's initial blocks) and calls
   * `beginTimedPart(limits)` after it; other loops are begun just before `run`.
   */
  readonly setsUp?: boolean;
  /** One thread's loop over an allocator whose blocks are addresses in `memory`. */
  run(allocator: AddressAllocator, memory: LoopMemory, input: SharedArrayBuffer | null, limits: LoopLimits, thread: ThreadParams): ThreadOutcome;
  /**
   * The same loop with V8's own allocation (the `system` baseline, which has no addresses);
   * absent for a loop that cannot run so (its threads free each other's blocks), and then the
   * workload does not apply to `system`.
   */
  runSystem?(input: SharedArrayBuffer | null, limits: LoopLimits, thread: ThreadParams): ThreadOutcome;
}

/** One thread's task; structured-cloneable, sent as `workerData`. */
export interface ThreadTask extends ThreadParams {
  /** The `ThreadLoop.workload` to run. */
  workload: string;
  source: AllocatorSource;
  /** The loop's `sharedInput()`, made by the main thread. */
  input: SharedArrayBuffer | null;
  /** The run's `ThreadParams.runState`. */
  runState: SharedArrayBuffer | null;
  /** The run's control words (`STOP_WORD`, `BEGUN_WORD`; `RUN_CONTROL_BYTES` long). */
  stopBuffer: SharedArrayBuffer;
  maxIterations: number;
  /**
   * The timed part's length, counted from `begin`, for a thread that watches the clock (the
   * calling thread of a one-thread run); workers get Infinity and stop at the flag.
   */
  durationMs: number;
}

/** A worker's reply. */
export type ThreadReply = { ok: true; outcome: ThreadOutcome } | { ok: false; message: string };

/**
 * Runs one thread's share of `loop`.
 * @param creatorHeap the creator's handle, when running in the thread that made the heap
 * @throws Error from the loop (heap full, verify failure) or AllocError from the allocator
 */
export async function runThreadTask(loop: ThreadLoop, task: ThreadTask, creatorHeap: GlobalAllocator | null = null): Promise<ThreadOutcome> {
  const opened = await openThreadAllocator(task.source, task.threadIndex, creatorHeap);
  const control = new Int32Array(task.stopBuffer);
  let begun = false;
  let clockAtBegin: ThreadClock | null = null;
  const limits: LoopLimits = {
    stop: control,
    deadline: Infinity,
    maxIterations: task.maxIterations,
    begin() {
      if (begun) return;
      begun = true;
      clockAtBegin = readThreadClock();
      limits.deadline = performance.now() + task.durationMs;
      Atomics.add(control, BEGUN_WORD, 1);
      Atomics.notify(control, BEGUN_WORD);
    },
  };
  const thread: ThreadParams = { threadIndex: task.threadIndex, threads: task.threads, verify: task.verify, runState: task.runState };
  try {
    if (loop.setsUp !== true) limits.begin!();
    let outcome: ThreadOutcome;
    if (opened.allocator !== null && opened.memory !== null) outcome = loop.run(opened.allocator, opened.memory, task.input, limits, thread);
    else if (loop.runSystem === undefined) throw new Error(`${loop.workload} has no loop for the system baseline`);
    else outcome = loop.runSystem(task.input, limits, thread);
    return withThreadClock(outcome, clockAtBegin);
  } finally {
    opened.release();
  }
}

/** `outcome` with this thread's CPU and wait time since `atBegin` (unchanged without a clock). */
function withThreadClock(outcome: ThreadOutcome, atBegin: ThreadClock | null): ThreadOutcome {
  const now = readThreadClock();
  if (atBegin === null || now === null) return outcome;
  return { ...outcome, cpuSeconds: (now.cpuNs - atBegin.cpuNs) / 1e9, waitSeconds: (now.waitNs - atBegin.waitNs) / 1e9 };
}
