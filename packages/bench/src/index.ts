/**
 * @heaplab/bench: the benchmarks behind the `heaplab` command, for programs that want the
 * figures rather than the table. Each workload is a `Workload` in `WORKLOADS`; `runBench`
 * runs a choice of them over heaplab backends and baselines; `replayTraceFiles` replays
 * allocation traces and scores backends (`heaplab replay`).
 */

export {
  availableBackends,
  BACKEND_PACKAGES,
  type BackendChoice,
  createBackendHeap,
  discoverBackends,
  resolveBackendContenders,
} from './contenders/backends.js';
export {
  type BackendContender,
  BASELINE_NAMES,
  type BaselineContender,
  type BaselineName,
  baselineContender,
  baselineContenders,
  type NativeContender,
  nativeContender,
  type Contender,
  type ContenderKind,
  formatBackendSpec,
} from './contenders/contender.js';
export type { Chart, ChartSpec } from './report/chart.js';
export { type RenderedSvg, renderChart, renderSvg, reportCharts, writeReport, writeReportPage } from './report/html-report.js';
export type { UnavailableBackend } from './contenders/backends.js';
export { type BenchMeta, type BenchResults, rowsOf, type WorkloadResults } from './report/results.js';
export { summary } from './report/summary.js';
export { type AddressAllocator, type LoopLimits, type LoopMemory, loopMemory } from './run/address-allocator.js';
export { createProgress, type Progress, silentProgress } from './run/progress.js';
export { countSteps, runBench } from './run/run-bench.js';
export type { ThreadLoop, ThreadOutcome, ThreadParams } from './run/thread-loop.js';
export { runThreaded, type ThreadedRun, type ThreadedRunOptions } from './run/threaded-run.js';
export type { ThroughputRow } from './run/throughput-rows.js';
export type { BenchSettings, SummarySection, Workload, WorkloadRow } from './run/workload.js';
export { allocPairsWorkload } from './workloads/alloc-pairs/workload.js';
export { HeapBTree, INTERNAL_NODE_BYTES, LEAF_NODE_BYTES } from './workloads/arceos/heap-btree.js';
export { ARCEOS_SEED, LibaxRandom } from './workloads/arceos/libax-random.js';
export { ARCEOS_TESTS, type ArceosRow, type ArceosTestName } from './workloads/arceos/suite.js';
export { arceosThreadsLoop, arceosWorkload } from './workloads/arceos/workload.js';
export { GlibcRandom, RAND_MAX } from './workloads/glibc-thread/glibc-rand.js';
export { fillBytes, runGlibcThreadLoop, verifyFill } from './workloads/glibc-thread/loop.js';
export { GLIBC_THREAD_PROGRAM, runNativeGlibcThread } from './workloads/glibc-thread/native.js';
export { buildNativeProgram, type NativeRun, parseNativeTrailer, runNativeProgram } from './run/native-program.js';
export { findNativeAllocator, NATIVE_ALLOCATORS, NATIVE_INSTALL_LINE, type NativeAllocatorName } from './contenders/native-allocators.js';
export { buildRequestTables, NUM_BLOCK_SIZES, NUM_OFFSETS, type RequestTables, WORKING_SET_SIZE } from './workloads/glibc-thread/request-tables.js';
export type { GlibcThreadRow, GlibcUpstreamJson } from './workloads/glibc-thread/row.js';
export { glibcThreadLoop, glibcThreadWorkload, upstreamJson } from './workloads/glibc-thread/workload.js';
export { type EfficiencyFigures, measureEfficiency } from './workloads/heap-efficiency/measure.js';
export { type EfficiencyTarget, HeaplabEfficiencyTarget, ThingEfficiencyTarget } from './workloads/heap-efficiency/targets.js';
export { EFFICIENCY_HEAP_BYTES, EFFICIENCY_TRIALS, type EfficiencyRow, heapEfficiencyWorkload } from './workloads/heap-efficiency/workload.js';
export { ALL, selectWorkloads, threadLoopOf, WORKLOAD_LIST, WORKLOADS } from './workloads/index.js';
export { END_OF_TRACE_OP, median, type ReplayOptions, replayTrace, type TimedPass, type TraceReplay } from './replay/replay-engine.js';
export { type BackendScore, scoreBackend, THROUGHPUT_WEIGHT, throughputOf, UTILIZATION_WEIGHT } from './replay/replay-score.js';
export {
  type BackendReplays,
  DEFAULT_REFERENCE,
  DEFAULT_REPLAY_REPEAT,
  type ReplayResults,
  type ReplaySuiteOptions,
  replaySuite,
  replayTraceFiles,
  type TraceResult,
} from './replay/replay-suite.js';
export { backendTable, describeFailure, replayText } from './replay/replay-table.js';
export type { ReplayFailure } from './replay/replay-thread.js';
export { defaultReplayHeapBytes, readTraceFiles, type TraceFile } from './replay/trace-files.js';
