/**
 * Replaying a set of traces on a set of backends and scoring each, with the reference backend
 * replayed in the same run: what `heaplab replay` prints and what `heaplab grade` builds on.
 */

import type { BackendSpec } from '@heaplab/core';

import { type BackendChoice, discoverBackends, resolveBackendContenders } from '../contenders/backends.js';
import type { BackendContender } from '../contenders/contender.js';
import { replayTrace, type TraceReplay } from './replay-engine.js';
import { type BackendScore, scoreBackend, THROUGHPUT_WEIGHT, throughputOf, UTILIZATION_WEIGHT } from './replay-score.js';
import { defaultReplayHeapBytes, readTraceFiles, type TraceFile } from './trace-files.js';

/** The reference backend when none is named. */
export const DEFAULT_REFERENCE: BackendSpec = { name: 'tlsf', options: {} };
/** Timed passes per trace when none is said. */
export const DEFAULT_REPLAY_REPEAT = 3;

/** How to replay a suite. */
export interface ReplaySuiteOptions {
  /** Timed passes per trace (default `DEFAULT_REPLAY_REPEAT`). */
  repeat?: number;
  /** Every trace's heap, in bytes; default: each its own (`defaultReplayHeapBytes`). */
  heapBytes?: number;
  /** Told when a backend starts on a trace (progress lines). */
  onStart?: (backend: string, trace: string) => void;
}

/** One trace of a backend's replays. */
export interface TraceResult extends TraceReplay {
  /** The trace's file name. */
  trace: string;
}

/** One backend's replays and score. */
export interface BackendReplays {
  /** The backend spec as a label (`basic:strategy=best-fit`). */
  backend: string;
  spec: BackendSpec;
  /** True for the reference backend. */
  reference: boolean;
  traces: TraceResult[];
  score: BackendScore;
}

/** A whole replay run. */
export interface ReplayResults {
  kind: 'heaplab-replay';
  weights: { utilization: number; throughput: number };
  /** The reference backend's label, and its throughput T_ref (null when it had no valid trace). */
  reference: { backend: string; throughput: number | null };
  repeat: number;
  /** Each trace as read: its file name and path, its size, its threads and the description it carries (empty when none). */
  traces: { trace: string; path: string; requests: number; threads: number; description: string }[];
  /** The backends asked for, in order, then the reference when it was not one of them. */
  backends: BackendReplays[];
}

/**
 * Replays `traces` on every backend of `contenders` and on `reference`, and scores them.
 * @throws AllocError when a heap cannot be made (bad options, a heap size too small for
 *   the backend); what a backend does wrong is an invalid trace in the results instead
 */
export async function replaySuite(
  traces: readonly TraceFile[],
  contenders: readonly BackendContender[],
  reference: BackendContender,
  options: ReplaySuiteOptions = {},
): Promise<ReplayResults> {
  const repeat = options.repeat ?? DEFAULT_REPLAY_REPEAT;
  const rows = contenders.some((contender) => contender.label === reference.label) ? [...contenders] : [...contenders, reference];
  const replayed: { contender: BackendContender; traces: TraceResult[] }[] = [];
  for (const contender of rows) {
    const results: TraceResult[] = [];
    for (const file of traces) {
      options.onStart?.(contender.label, file.name);
      const heapBytes = options.heapBytes ?? defaultReplayHeapBytes(file.trace);
      results.push({ trace: file.name, ...(await replayTrace(file.trace, contender.spec, { heapBytes, repeat })) });
    }
    replayed.push({ contender, traces: results });
  }
  const referenceThroughput = throughputOf(replayed.find((row) => row.contender.label === reference.label)!.traces).throughput;
  return {
    kind: 'heaplab-replay',
    weights: { utilization: UTILIZATION_WEIGHT, throughput: THROUGHPUT_WEIGHT },
    reference: { backend: reference.label, throughput: referenceThroughput },
    repeat,
    traces: traces.map((file) => ({
      trace: file.name,
      path: file.path,
      requests: file.trace.requests.length,
      threads: file.trace.threads,
      description: file.trace.description,
    })),
    backends: replayed.map(({ contender, traces: results }) => ({
      backend: contender.label,
      spec: contender.spec,
      reference: contender.label === reference.label,
      traces: results,
      score: scoreBackend(results, referenceThroughput),
    })),
  };
}

/**
 * `heaplab replay` as a function: reads the trace files or directories of `paths`, resolves
 * the backends (`all` for every registered one) and the reference, replays and scores.
 * @throws AllocError `InvalidParam` for an unreadable or malformed trace (file and line
 *   named), `UnknownBackend` / `InvalidParam` for a bad backend spec, or as `replaySuite`
 */
export async function replayTraceFiles(
  paths: readonly string[],
  backends: readonly BackendChoice[],
  options: ReplaySuiteOptions & { reference?: BackendSpec } = {},
): Promise<ReplayResults> {
  const traces = readTraceFiles(paths);
  await discoverBackends();
  const contenders = resolveBackendContenders(backends);
  const [reference] = resolveBackendContenders([options.reference ?? DEFAULT_REFERENCE]);
  return replaySuite(traces, contenders, reference!, options);
}
