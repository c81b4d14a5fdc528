/**
 * The alloc-pairs workload over every contender: alloc+free pairs per second, on one thread
 * and on N workers sharing the heap (see alloc-pairs-loop.ts), for every backend (each basic
 * strategy is a spec of its own) and the baselines.
 */

import type { Contender } from '../../contenders/contender.js';
import { runThroughputRows, type ThroughputSettings } from '../glibc-thread/workload.js';
import type { Progress } from '../../run/progress.js';
import type { ThroughputRow } from '../../report/results.js';

/** Runs alloc-pairs for each contender (native excluded: the C port runs glibc-thread only). */
export async function runAllocPairsBench(
  contenders: readonly Contender[],
  settings: ThroughputSettings,
  progress: Progress,
): Promise<ThroughputRow[]> {
  // No byte verification here: the pairs loop writes nothing into its blocks.
  return runThroughputRows('alloc-pairs', contenders, { ...settings, verify: false }, progress, {
    extraFields: () => ({}),
  });
}
