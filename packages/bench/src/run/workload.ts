/**
 * What a workload is to the rest of the bench. Each workload is one folder under
 * src/workloads/ exporting one `Workload` object, listed once in src/workloads/index.ts; the
 * command line, `bench all`, the progress count, the results, the terminal tables and the
 * HTML report all go through that list, so nothing else names a workload.
 */

import type { Contender, ContenderKind } from '../contenders/contender.js';
import type { Chart } from '../report/chart.js';
import type { Progress } from './progress.js';
import type { InspectableHeap } from './address-allocator.js';
import type { ThreadLoop } from './thread-loop.js';

/** What every row of every workload has; `--json` writes rows as they are. */
export interface WorkloadRow {
  /** The contender's label. */
  label: string;
  kind: ContenderKind;
  /** Threads of the run, for the workloads that run on threads. */
  threads?: number;
  /** Something the reader must know about this row (e.g. a lock around the allocator). */
  note?: string;
  /** Set when the run failed; its figures are then 0. */
  error?: string;
}

/** Settings of one `heaplab bench` run; each workload reads those that concern it. */
export interface BenchSettings {
  /** Thread counts of the workloads that run on threads. */
  threads: readonly number[];
  /** Seconds per timed run. */
  durationSeconds: number;
  /** Timed runs per row; a row shows their median, minimum and maximum. */
  repeat: number;
  /** One shorter run before a row's timed runs, its figures dropped. */
  warmup: boolean;
  /**
   * Run the timed runs of the workloads that run on threads in rounds, each round one run of
   * every row (A B C, A B C, ...), instead of each row's runs one after another: rows that a
   * ratio compares then sample the same moments of a machine whose speed drifts (the host's
   * placement of the CPUs, other work). Absent: false.
   */
  interleave?: boolean;
  /** Check every block's bytes before it is freed (workloads that fill their blocks). */
  verify: boolean;
  /**
   * How the native C ports fill their blocks: `memset` (one value, as the TypeScript loops'
   * word stores) or `bytes` (`p[i] = (char)i`, as mimalloc-bench's programs, to reproduce
   * their published figures). The TypeScript loops always fill as `memset`.
   */
  fill: 'memset' | 'bytes';
  /** Heap bytes of the threaded runs. */
  heapBytes: number;
  /**
   * Run each one-thread row in a process of its own (see run/isolated-run.ts). False runs
   * them here, after each other, where the rows before share their JIT state.
   */
  isolate: boolean;
  /** Trials of the workloads that count trials; undefined for each one's default. */
  trials?: number;
  /** Seed of the workloads that draw random numbers. */
  seed: number;
  /** True under `heaplab bench all`: a workload with a long default runs its short form. */
  inAll: boolean;
  /** Iterations per thread at most; Infinity (the default) for timed runs. Tests bound runs by it. */
  maxIterations?: number;
}

/** How the run was made. */
export interface BenchMeta {
  /** heaplab's version: the bench package's. */
  version: string;
  /** The command line that made the run, to paste back into a shell (`heaplab bench ...`). */
  command: string;
  /** The machine's host name: what tells runs from two machines apart in a merged report. */
  host: string;
  date: string;
  node: string;
  cpus: number;
  cpuModel: string;
  durationSeconds: number;
  /** Timed runs per row of the timed workloads. */
  repeat: number;
  warmup: boolean;
  /** True when the runs were interleaved (`BenchSettings.interleave`); absent otherwise. */
  interleave?: boolean;
  threads: number[];
  heapBytes: number;
  verify: boolean;
  /** Whether one-thread rows ran in processes of their own. */
  isolate: boolean;
}

/**
 * What a workload's summary section may read of the rest of the run: how it was made, and
 * another workload's successful rows (none when it did not run). It is this narrow so that a
 * workload does not depend on the results type, which is made from the list of all workloads.
 */
export interface RunContext {
  readonly meta: BenchMeta;
  /** The widest line the section's tables may have (`renderTable`'s layout); its default when not given. */
  readonly width?: number;
  rowsOf<R extends WorkloadRow>(workload: Workload<R>): readonly R[];
}

/** One workload's part of the terminal summary. */
export interface SummarySection {
  /** The line above the table. */
  title: string;
  table: string;
  /** Lines for the notes under every table (the same line from two sections shows once). */
  notes?: string[];
}

/**
 * A run `heaplab map` and `heaplab stats` can take a heap's moments of (docs/heap-maps.md):
 * one thread, deterministic, every allocator call through `heap`, and with nothing dropped at
 * its end (what it still holds stays live, as `ThreadParams.leaveLive`).
 */
export interface InspectRun {
  /** As `--workload` names it. */
  readonly name: string;
  /** One line for the help. */
  readonly summary: string;
  /** The heap it needs when `--heap-mib` is not given; undefined for the command's default. */
  readonly heapBytes?: number;
  /**
   * Runs it to its end.
   * @param iterations `--iterations`: a bound on its main loops, undefined for its own counts
   */
  run(heap: InspectableHeap, iterations: number | undefined): void;
}

/**
 * A workload: its name, the contenders it measures, how it runs and how its rows are shown.
 * `Key` is its key in `BenchResults` (and in the JSON).
 */
export interface Workload<Row extends WorkloadRow = WorkloadRow, Key extends string = string> {
  /** As `heaplab bench` takes it; also its folder under src/workloads/ and its page under docs/workloads/. */
  readonly name: string;
  readonly resultKey: Key;
  /** One line for `heaplab bench --help`. */
  readonly summary: string;
  /** What `bench all --help` says of it besides its name (its short form). */
  readonly allNote?: string;
  /** Whether it measures `contender` (the others get no row and no progress step). */
  appliesTo(contender: Contender): boolean;
  /** Progress steps each contender it applies to takes. */
  stepsPerContender(settings: BenchSettings): number;
  /** The loop each thread runs, for a workload that runs on threads (workers find it by `name`). */
  readonly threadLoop?: ThreadLoop;
  /**
   * The largest block one of its threads asks for, for a workload whose threads allocate from
   * a heap of `heapBytes`: with it, `heaplab bench` refuses a heap smaller than a backend
   * needs for that many threads (`minimumHeapBytes`) instead of running into a full heap.
   */
  readonly largestBlock?: number;
  /**
   * The heap a row of `threads` threads runs in, for a workload that does not take
   * `settings.heapBytes` as it is (a heap of its own size, or at least one): what `heaplab
   * bench` checks against the backends' minimum. Without it, `settings.heapBytes`.
   */
  heapBytesFor?(settings: BenchSettings, threads: number): number;
  /**
   * What `heaplab map` runs of it, when not its thread loop's one-thread share (ArceOS's
   * single-thread tests, whose thread test needs its ten threads).
   */
  readonly inspectRuns?: readonly InspectRun[];
  /**
   * Measures `contenders` (only those it applies to). A failure becomes a row with `error`;
   * it never stops the other rows.
   */
  run(contenders: readonly Contender[], settings: BenchSettings, progress: Progress): Promise<Row[]>;
  /** Its summary section over its successful rows (the rest of the run at hand). */
  section(rows: readonly Row[], run: RunContext): SummarySection;
  /** Its charts for `--report`, over its successful rows; none when there is nothing to draw. */
  charts(rows: readonly Row[]): Chart[];
  /** Output formats it offers besides the table (`--format name`), each with a line of help. */
  readonly rawFormats?: Readonly<Record<string, string>>;
  /** The stdout lines of `--format format` (one of `rawFormats`) for its successful rows. */
  rawOutput?(rows: readonly Row[], format: string): string[];
}
