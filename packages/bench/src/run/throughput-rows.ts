/**
 * The row runner of every workload that runs on threads: one row per contender and thread
 * count, each a `runThreaded` (one-thread rows in a process of their own unless told not to).
 */

import type { Contender } from '../contenders/contender.js';
import { runThreadedIsolated } from './isolated-run.js';
import type { Progress } from './progress.js';
import type { ThreadLoop } from './thread-loop.js';
import { runThreaded, type ThreadedRun } from './threaded-run.js';
import type { BenchSettings, WorkloadRow } from './workload.js';

/** One row of a workload that runs on threads. */
export interface ThroughputRow extends WorkloadRow {
  threads: number;
  /** Iterations (or what the workload counts), all threads. */
  iterations: number;
  /** From the clock start to the last thread's end. */
  wallSeconds: number;
  /** Iterations per second while the threads ran (see `ThreadedRun.perSecond`). */
  perSecond: number;
  peakUsedBytes: number | null;
  /** True when `peakUsedBytes` is sampled by the backend, so a lower bound (mimalloc). */
  peakUsedSampled?: boolean;
  /** Highest byte any block reached, from the arena's start; null when not tracked. */
  peakFootprintBytes: number | null;
}

/** How a workload's rows differ from the common ones. */
export interface ThroughputRowOptions<Row extends ThroughputRow> {
  /** Runs a `native` contender's row (a program of its own); required when the workload applies to native. */
  native?: (contender: Contender, threads: number) => Promise<Row>;
  /** Fields the workload adds to a successful row. */
  extraFields?: (run: ThreadedRun, threads: number) => Partial<Row>;
}

/**
 * Runs `loop` for each contender and thread count, one row per run. A failed run becomes a
 * row with `error` set; it never stops the others.
 */
export async function runThroughputRows<Row extends ThroughputRow>(
  loop: ThreadLoop,
  contenders: readonly Contender[],
  settings: BenchSettings,
  progress: Progress,
  options: ThroughputRowOptions<Row> = {},
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const contender of contenders) {
    for (const threads of settings.threads) {
      progress.step(`${loop.workload}  ${contender.label}  ${threads} thread${threads === 1 ? '' : 's'}`, settings.durationSeconds);
      if (contender.kind === 'native') {
        rows.push(
          options.native !== undefined
            ? await options.native(contender, threads)
            : (failedRow(contender, threads, `${loop.workload} has no native program`) as Row),
        );
        continue;
      }
      try {
        const request = {
          contender,
          threads,
          durationSeconds: settings.durationSeconds,
          maxIterations: settings.maxIterations ?? Infinity,
          verify: settings.verify,
          heapBytes: settings.heapBytes,
        };
        const run =
          threads === 1 && settings.isolate ? await runThreadedIsolated({ ...request, workload: loop.workload }) : await runThreaded({ ...request, loop });
        rows.push({
          label: contender.label,
          kind: contender.kind,
          threads,
          iterations: run.iterations,
          wallSeconds: run.wallSeconds,
          perSecond: run.perSecond,
          peakUsedBytes: run.peakUsedBytes,
          ...(run.peakUsedSampled ? { peakUsedSampled: true } : {}),
          peakFootprintBytes: run.peakFootprintBytes,
          ...noteFor(contender, threads),
          ...options.extraFields?.(run, threads),
        } as Row);
      } catch (error) {
        rows.push(failedRow(contender, threads, error) as Row);
      }
    }
  }
  return rows;
}

/** The note a baseline's row needs. */
function noteFor(contender: Contender, threads: number): { note?: string } {
  if (contender.kind === 'thing' && threads > 1) return { note: "not thread-safe: serialised by core's shared mutex" };
  if (contender.kind === 'system') return { note: "V8's allocator and garbage collector, one heap per worker" };
  if (contender.kind === 'bump') return { note: 'never frees: the cost of the loop and the fill alone' };
  return {};
}

/** A row for a run that failed. */
export function failedRow(contender: Contender, threads: number, error: unknown): ThroughputRow {
  return {
    label: contender.label,
    kind: contender.kind,
    threads,
    iterations: 0,
    wallSeconds: 0,
    perSecond: 0,
    peakUsedBytes: null,
    peakFootprintBytes: null,
    error: error instanceof Error ? error.message : String(error),
  };
}
