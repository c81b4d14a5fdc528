/**
 * The records every workload produces; `--json` writes them as they are, the table and the
 * report read them.
 */

import type { ContenderKind } from '../contenders/contender.js';

/** bench-malloc-thread's upstream JSON for one run (glibc benchtests format). */
export interface GlibcUpstreamJson {
  timing_type: string;
  functions: {
    malloc: {
      '': {
        /** Sum of the threads' elapsed times, in nanoseconds. */
        duration: number;
        iterations: number;
        time_per_iteration: number;
        /** Of the whole process, in KiB. */
        max_rss: number;
        threads: number;
        min_size: number;
        max_size: number;
        random_seed: number;
      };
    };
  };
}

/** One row of a throughput workload (glibc-thread or alloc-pairs). */
export interface ThroughputRow {
  label: string;
  kind: ContenderKind;
  threads: number;
  /** Iterations (glibc-thread) or alloc+free pairs (alloc-pairs), all threads. */
  iterations: number;
  /** From the clock start to the last thread's end. */
  wallSeconds: number;
  /** Iterations per second while the threads ran (see `ThreadedRun.perSecond`). */
  perSecond: number;
  peakUsedBytes: number | null;
  /** True when `peakUsedBytes` is sampled by the backend, so a lower bound (mimalloc). */
  peakUsedSampled?: boolean;
  peakFootprintBytes: number | null;
  /** Something the reader must know about this row (e.g. a lock around the allocator). */
  note?: string;
  /** Set when the run failed; the figures are then 0. */
  error?: string;
  /** glibc-thread only: the mimalloc-bench line. */
  mimallocBenchLine?: string;
  /** glibc-thread only. */
  upstream?: GlibcUpstreamJson;
}

/** One row of heap efficiency. */
export interface EfficiencyRow {
  label: string;
  kind: ContenderKind;
  /** used / total over all trials, in percent. */
  efficiencyPercent: number;
  trials: number;
  seed: number;
  heapBytes: number;
  seconds: number;
  /** Random actions taken over all trials. */
  actions: number;
  note?: string;
  error?: string;
}

/** One phase pair of random-free. */
export interface RandomFreePhase {
  blocks: number;
  blockBytes: number;
  allocateSeconds: number;
  freeSeconds: number;
}

/** One row of random-free. */
export interface RandomFreeRow {
  label: string;
  kind: ContenderKind;
  phases: RandomFreePhase[];
  note?: string;
  error?: string;
}

/** A backend package that could not be imported, and why. */
export interface UnavailableBackend {
  package: string;
  reason: string;
}

/** Everything one `heaplab bench` run measured. */
export interface BenchResults {
  meta: {
    date: string;
    node: string;
    cpus: number;
    cpuModel: string;
    durationSeconds: number;
    threads: number[];
    heapBytes: number;
    verify: boolean;
    /** Whether one-thread rows ran in processes of their own. */
    isolate: boolean;
  };
  unavailable: UnavailableBackend[];
  glibcThread: ThroughputRow[];
  allocPairs: ThroughputRow[];
  heapEfficiency: EfficiencyRow[];
  randomFree: RandomFreeRow[];
}
