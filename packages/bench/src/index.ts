/**
 * @heaplab/bench: the benchmarks behind the `heaplab` command, for programs that want the
 * figures rather than the table: bench-malloc-thread (glibc-thread), heap efficiency,
 * alloc-pairs and random-free over every registered backend and the baselines.
 */

export { runAllocPairsBench } from './workloads/alloc-pairs/workload.js';
export { availableBackends, BACKEND_PACKAGES, discoverBackends } from './contenders/backends.js';
export {
  backendContender,
  BASELINE_NAMES,
  type BaselineName,
  baselineContender,
  type Contender,
  type ContenderKind,
} from './contenders/contender.js';
export { runGlibcThreadBench, type ThroughputSettings, upstreamJson } from './workloads/glibc-thread/workload.js';
export { type AddressAllocator, type LoopLimits, type LoopMemory, loopMemory } from './run/address-allocator.js';
export { fillBytes, type LoopOutcome, runGlibcThreadLoop, verifyFill } from './workloads/glibc-thread/loop.js';
export {
  DEFAULT_EFFICIENCY_SEED,
  EFFICIENCY_HEAP_BYTES,
  EFFICIENCY_TRIALS,
  type EfficiencyFigures,
  measureEfficiency,
  runHeapEfficiencyBench,
} from './workloads/heap-efficiency/workload.js';
export { type EfficiencyTarget, HeaplabEfficiencyTarget, ThingEfficiencyTarget } from './workloads/heap-efficiency/targets.js';
export { buildNativeBench, runNativeGlibcThread } from './workloads/glibc-thread/native.js';
export { createProgress, type Progress, silentProgress } from './run/progress.js';
export { GlibcRandom, RAND_MAX } from './workloads/glibc-thread/glibc-rand.js';
export { RANDOM_FREE_ROUNDS, runRandomFreeBench, timeRandomFree } from './workloads/random-free/workload.js';
export { renderSvg, reportCharts, writeReport } from './report/html-report.js';
export type * from './report/results.js';
export { ALL_WORKLOADS, type BenchRequest, resolveBackends, runBench, type WorkloadName, WORKLOADS } from './run/run-bench.js';
export { summary } from './report/summary.js';
export { type BenchTables, buildTables, NUM_BLOCK_SIZES, NUM_OFFSETS, WORKING_SET_SIZE } from './workloads/glibc-thread/request-tables.js';
export { runThreaded, type ThreadedRun, type ThreadedRunOptions } from './run/threaded-run.js';
