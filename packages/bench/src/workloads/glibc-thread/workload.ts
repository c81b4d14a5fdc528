/**
 * bench-malloc-thread over every contender and thread count: one `ThroughputRow` per run,
 * with the mimalloc-bench line and glibc's upstream JSON. See
 * /work/shared/specs/bench-malloc-thread.md for the workload.
 */

import type { Contender } from '../../contenders/contender.js';
import { runNativeGlibcThread } from './native.js';
import type { Progress } from '../../run/progress.js';
import type { GlibcUpstreamJson, ThroughputRow } from '../../report/results.js';
import { DECLARED_RANDOM_SEED, MAX_ALLOCATION_SIZE, MIN_ALLOCATION_SIZE, sharedTables } from './request-tables.js';
import { runThreadedIsolated } from '../../run/isolated-run.js';
import { runThreaded, type ThreadedRun } from '../../run/threaded-run.js';
import type { ThreadedWorkload } from '../../run/thread-task.js';

/** Settings shared by every run. */
export interface ThroughputSettings {
  threads: readonly number[];
  durationSeconds: number;
  verify: boolean;
  heapBytes: number;
  /** Per thread; Infinity for timed runs (tests bound runs by count). */
  maxIterations?: number;
  /**
   * Run each one-thread row in a process of its own (default true; see `isolated-run.ts`).
   * False runs them here, after each other, where the rows before share their JIT state.
   */
  isolate?: boolean;
}

/**
 * Runs bench-malloc-thread for each contender and thread count. A failed run becomes a row
 * with `error` set; it never stops the others.
 */
export async function runGlibcThreadBench(
  contenders: readonly Contender[],
  settings: ThroughputSettings,
  progress: Progress,
): Promise<ThroughputRow[]> {
  return runThroughputRows('glibc-thread', contenders, settings, progress, {
    native: (contender, threads) => runNativeGlibcThread(contender, threads, settings.durationSeconds),
    extraFields: (run, threads) => {
      const durationNs = run.threadSeconds.reduce((sum, seconds) => sum + seconds, 0) * 1e9;
      return {
        peakFootprintBytes: run.peakFootprintBytes,
        mimallocBenchLine: `${run.iterations} iterations`,
        upstream: upstreamJson(durationNs, run.iterations, threads, 'performance.now', run.maxRssKiB),
      };
    },
  });
}

/** How a throughput workload treats the native row and what it adds to a row. */
export interface ThroughputRowOptions {
  /** Runs the native row; without it, native contenders are skipped. */
  native?: (contender: Contender, threads: number) => Promise<ThroughputRow>;
  /** Fields this workload adds to a successful row. */
  extraFields: (run: ThreadedRun, threads: number) => Partial<ThroughputRow>;
}

/**
 * Runs `workload` for each contender and thread count, one `ThroughputRow` per run. A failed
 * run becomes a row with `error` set; it never stops the others.
 */
export async function runThroughputRows(
  workload: ThreadedWorkload,
  contenders: readonly Contender[],
  settings: ThroughputSettings,
  progress: Progress,
  options: ThroughputRowOptions,
): Promise<ThroughputRow[]> {
  const { buffer: tablesBuffer } = sharedTables();
  const rows: ThroughputRow[] = [];
  for (const contender of contenders) {
    if (contender.kind === 'native' && options.native === undefined) continue;
    for (const threads of settings.threads) {
      progress.step(`${workload}  ${contender.label}  ${threads} thread${threads === 1 ? '' : 's'}`, settings.durationSeconds);
      if (contender.kind === 'native') {
        rows.push(await options.native!(contender, threads));
        continue;
      }
      try {
        const request = {
          contender,
          workload,
          threads,
          durationSeconds: settings.durationSeconds,
          maxIterations: settings.maxIterations ?? Infinity,
          verify: settings.verify,
          heapBytes: settings.heapBytes,
        };
        const run =
          threads === 1 && settings.isolate !== false
            ? await runThreadedIsolated(request)
            : await runThreaded({ ...request, tablesBuffer });
        rows.push({
          label: contender.label,
          kind: contender.kind,
          threads,
          iterations: run.iterations,
          wallSeconds: run.wallSeconds,
          perSecond: run.perSecond,
          peakUsedBytes: run.peakUsedBytes,
          ...(run.peakUsedSampled ? { peakUsedSampled: true } : {}),
          peakFootprintBytes: null,
          ...noteFor(contender, threads),
          ...options.extraFields(run, threads),
        });
      } catch (error) {
        rows.push(failedRow(contender, threads, error));
      }
    }
  }
  return rows;
}

/**
 * glibc's JSON for one run; `durationNs` is the sum of the threads' elapsed times, `maxRssKiB`
 * the peak resident size of the process that ran it (this one's by default).
 */
export function upstreamJson(
  durationNs: number,
  iterations: number,
  threads: number,
  timingType: string,
  maxRssKiB: number = process.resourceUsage().maxRSS,
): GlibcUpstreamJson {
  return {
    timing_type: timingType,
    functions: {
      malloc: {
        '': {
          duration: durationNs,
          iterations,
          time_per_iteration: iterations === 0 ? 0 : durationNs / iterations,
          max_rss: maxRssKiB,
          threads,
          min_size: MIN_ALLOCATION_SIZE,
          max_size: MAX_ALLOCATION_SIZE,
          random_seed: DECLARED_RANDOM_SEED,
        },
      },
    },
  };
}

/** The note a row needs: @thi.ng/malloc is serialised by a lock when shared. */
export function noteFor(contender: Contender, threads: number): { note?: string } {
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
