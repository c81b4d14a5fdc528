/**
 * The message format between the main thread and a benchmark worker, and the code that runs
 * one thread's share of a workload (in a worker, or in the calling thread for one thread).
 */

import type { GlobalAllocator } from '@heaplab/core';

import { openThreadAllocator, type AllocatorSource } from '../contenders/allocator-sources.js';
import type { LoopLimits } from './address-allocator.js';
import { runGlibcThreadLoop } from '../workloads/glibc-thread/loop.js';
import { runPairsLoop, runSystemPairsLoop } from '../workloads/alloc-pairs/loop.js';
import { runSystemGlibcThreadLoop } from '../workloads/glibc-thread/system-loop.js';
import { tablesOver } from '../workloads/glibc-thread/request-tables.js';

/** The workloads that run on threads. */
export type ThreadedWorkload = 'glibc-thread' | 'alloc-pairs';

/** One thread's task; structured-cloneable, sent as `workerData`. */
export interface ThreadTask {
  workload: ThreadedWorkload;
  source: AllocatorSource;
  /** 0-based; picks the bump region, the lock owner id and the alloc-pairs seed. */
  threadIndex: number;
  /** The glibc-thread tables, built once by the main thread (`sharedTables`). */
  tablesBuffer: SharedArrayBuffer;
  /** Word 0 is the stop flag. */
  stopBuffer: SharedArrayBuffer;
  verify: boolean;
  maxIterations: number;
  /** `performance.now()` deadline in the calling thread; workers get Infinity and use the flag. */
  deadline: number;
}

/** One thread's figures. */
export interface ThreadOutcome {
  /** Iterations (glibc-thread) or pairs (alloc-pairs). */
  iterations: number;
  seconds: number;
  /** One past the highest byte a block reached; 0 when not tracked. */
  highWater: number;
}

/** A worker's reply. */
export type ThreadReply = { ok: true; outcome: ThreadOutcome } | { ok: false; message: string };

/**
 * Runs one thread's share of a workload.
 * @param creatorHeap the creator's handle, when running in the thread that made the heap
 * @throws Error from the loop (heap full, verify failure) or AllocError from the allocator
 */
export async function runThreadTask(task: ThreadTask, creatorHeap: GlobalAllocator | null = null): Promise<ThreadOutcome> {
  const opened = await openThreadAllocator(task.source, task.threadIndex, creatorHeap);
  const limits: LoopLimits = {
    stop: new Int32Array(task.stopBuffer),
    deadline: task.deadline,
    maxIterations: task.maxIterations,
  };
  const seed = task.threadIndex + 1;
  try {
    if (task.workload === 'alloc-pairs') {
      const { pairs, seconds } =
        opened.allocator === null ? runSystemPairsLoop(limits, seed) : runPairsLoop(opened.allocator, limits, seed);
      return { iterations: pairs, seconds, highWater: 0 };
    }
    const tables = tablesOver(task.tablesBuffer);
    return opened.allocator === null || opened.memory === null
      ? runSystemGlibcThreadLoop(tables, limits, task.verify)
      : runGlibcThreadLoop(opened.allocator, opened.memory, tables, limits, task.verify);
  } finally {
    opened.release();
  }
}
