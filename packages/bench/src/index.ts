/**
 * @heaplab/bench: the benchmarks behind the `heaplab` command, for programs that want the
 * figures rather than the table: bench-malloc-thread (glibc-thread), heap efficiency,
 * alloc-pairs and random-free over every registered backend and the baselines.
 */

export { runAllocPairsBench } from './alloc-pairs.js';
export { availableBackends, BACKEND_PACKAGES, discoverBackends } from './backends.js';
export {
  backendContender,
  BASELINE_NAMES,
  type BaselineName,
  baselineContender,
  type Contender,
  type ContenderKind,
} from './contenders.js';
export { runGlibcThreadBench, type ThroughputSettings, upstreamJson } from './glibc-thread.js';
export {
  type AddressAllocator,
  fillBytes,
  type LoopLimits,
  type LoopMemory,
  loopMemory,
  type LoopOutcome,
  runGlibcThreadLoop,
  verifyFill,
} from './glibc-thread-loop.js';
export {
  DEFAULT_EFFICIENCY_SEED,
  EFFICIENCY_HEAP_BYTES,
  EFFICIENCY_TRIALS,
  type EfficiencyFigures,
  measureEfficiency,
  runHeapEfficiencyBench,
} from './heap-efficiency.js';
export { type EfficiencyTarget, HeaplabEfficiencyTarget, ThingEfficiencyTarget } from './efficiency-targets.js';
export { buildNativeBench, runNativeGlibcThread } from './native.js';
export { createProgress, type Progress, silentProgress } from './progress.js';
export { GlibcRandom, RAND_MAX } from './rand.js';
export { RANDOM_FREE_ROUNDS, runRandomFreeBench, timeRandomFree } from './random-free.js';
export { renderSvg, reportCharts, writeReport } from './report.js';
export type * from './results.js';
export { ALL_WORKLOADS, type BenchRequest, resolveBackends, runBench, type WorkloadName, WORKLOADS } from './run-bench.js';
export { summary } from './table.js';
export { type BenchTables, buildTables, NUM_BLOCK_SIZES, NUM_OFFSETS, WORKING_SET_SIZE } from './tables.js';
export { runThreaded, type ThreadedRun, type ThreadedRunOptions } from './threaded-run.js';
