/**
 * Recording a workload's trace (`heaplab trace record`): the workload runs on a fresh heap
 * whose handles record into a `TraceRecorder`, deterministically and bounded as a heap map's
 * run is (docs/heap-maps.md): one thread runs in this process, through the same targets as
 * `heaplab map`, with its loop's clean-up kept so the trace ends with every block freed;
 * several threads run the workload's thread loop in workers that attach with the recorder,
 * and their trace is one order that happened (docs/traces.md), not the same on each run.
 */

import { type Trace, TraceRecorder, type TraceScan } from '@heaplab/core';

import { createBackendHeap } from '../contenders/backends.js';
import type { BackendContender } from '../contenders/contender.js';
import { DEFAULT_MAP_HEAP_BYTES, DEFAULT_MAP_ITERATIONS, mapTargets } from '../inspect/heap-moments.js';
import { runThreaded } from '../run/threaded-run.js';
import { WORKLOAD_LIST } from '../workloads/index.js';

/** How a recording is made. */
export interface RecordSettings {
  /** A `heaplab map` target name: a workload, or one of its runs (`arceos:vec_2`). */
  workload: string;
  /** Threads; more than one runs the workload's thread loop in workers. */
  threads: number;
  /** Iterations of a loop (per thread), or the most steps of each ArceOS test; undefined: the target's default. */
  iterations: number | undefined;
  /** Undefined: the target's own heap size, else `DEFAULT_MAP_HEAP_BYTES`. */
  heapBytes: number | undefined;
  /** Records the log holds. */
  capacity: number;
  /** The trace's description line. */
  description: string;
}

/** Names a recording can run: every map target; the thread loops also on several threads. */
export function recordableNames(): { single: string[]; threaded: string[] } {
  return {
    single: mapTargets().map((target) => target.name),
    threaded: WORKLOAD_LIST.filter((workload) => workload.threadLoop !== undefined).map((workload) => workload.name),
  };
}

/**
 * Runs `settings.workload` on `contender` with a recorder and returns its trace and what
 * was skipped.
 * @throws Error for a name that cannot be recorded so (listing those that can); AllocError
 *   from the heap, or when the log filled
 */
export async function recordWorkload(contender: BackendContender, settings: RecordSettings): Promise<TraceScan> {
  const recorder = new TraceRecorder({ capacity: settings.capacity });
  if (settings.threads === 1) {
    const targets = mapTargets({ leaveLive: false });
    const target = targets.find((candidate) => candidate.name === settings.workload);
    if (target === undefined) throw new Error(`no workload '${settings.workload}' to record; one of: ${targets.map((candidate) => candidate.name).join(', ')}`);
    const heap = createBackendHeap(contender.spec, settings.heapBytes ?? target.heapBytes ?? DEFAULT_MAP_HEAP_BYTES, recorder);
    try {
      target.run(heap, settings.iterations);
    } finally {
      heap.detach();
    }
    return recorder.scan({ description: settings.description });
  }
  const loop = WORKLOAD_LIST.find((workload) => workload.name === settings.workload)?.threadLoop;
  if (loop === undefined) {
    throw new Error(
      `'${settings.workload}' has no thread loop to run on ${settings.threads} threads; on several threads: ${recordableNames().threaded.join(', ')}`,
    );
  }
  await runThreaded({
    contender,
    loop,
    threads: settings.threads,
    durationSeconds: Infinity,
    maxIterations: settings.iterations ?? DEFAULT_MAP_ITERATIONS,
    verify: false,
    heapBytes: settings.heapBytes ?? DEFAULT_MAP_HEAP_BYTES,
    trace: recorder,
  });
  return recorder.scan({ description: settings.description });
}

/** The one-line figures of a recording, for stderr. */
export function recordingSummary(trace: Trace, scan: Pick<TraceScan, 'unpublished' | 'unknownAddresses'>, peakPayloadBytes: number): string {
  const skipped = scan.unpublished + scan.unknownAddresses;
  const skippedText = skipped === 0 ? '' : `; skipped ${scan.unpublished} unpublished records and ${scan.unknownAddresses} calls on unknown addresses`;
  return `${trace.requests.length} requests, ${trace.ids} ids, ${trace.threads} thread${trace.threads === 1 ? '' : 's'}, peak payload ${peakPayloadBytes} bytes${skippedText}`;
}
