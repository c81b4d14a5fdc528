/**
 * What one glibc-thread row holds: a throughput row and the benchmark's own outputs, the
 * line mimalloc-bench reads and glibc's JSON. Its own file, so the native runner and the
 * workload both depend on it and not on each other.
 */

import type { ThroughputRow } from '../../run/throughput-rows.js';

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

/** One glibc-thread row: a throughput row with the benchmark's own outputs. */
export interface GlibcThreadRow extends ThroughputRow {
  /** The line mimalloc-bench reads: `N iterations`. */
  mimallocBenchLine?: string;
  upstream?: GlibcUpstreamJson;
}
