/**
 * robson: a Robson-style worst-case fragmentation adversary (docs/workloads/robson.md). One
 * fixed run per contender: phases of blocks of 16 B to 4 KiB, at most 256 KiB live, each
 * phase freeing what leaves no hole the next size could use. The table sets each
 * contender's footprint against M and against Robson's bound.
 */

import { type GlobalAllocator, PAGE_SIZE } from '@heaplab/core';

import { createBackendHeap } from '../../contenders/backends.js';
import type { Contender, NativeContender } from '../../contenders/contender.js';
import { createThingBuffer, openThingPool, THING_POOL_START } from '../../contenders/thing-pool.js';
import { barChart } from '../../report/chart.js';
import { formatBytes, formatSeconds } from '../../report/format.js';
import { figureColumns, renderTable } from '../../report/text-table.js';
import { loopMemory } from '../../run/address-allocator.js';
import type { BenchSettings, Workload, WorkloadRow } from '../../run/workload.js';
import { type RobsonOutcome, type RobsonParams, type RobsonPhase, robsonBoundBytes, runRobsonAdversary, TOUCH_PAGE_BYTES } from './adversary.js';
import { runNativeRobson } from './native.js';

/** M: the most requested bytes live at once. */
export const ROBSON_LIVE_LIMIT_BYTES = 256 << 10;
/** The first and last phase's block sizes; every power of two between them is a phase. */
export const ROBSON_MIN_BLOCK_BYTES = 16;
export const ROBSON_MAX_BLOCK_BYTES = 4096;
/** The heap of each heaplab and @thi.ng/malloc run: room for far more than the bound. */
export const ROBSON_HEAP_BYTES = 64 << 20;
/** The warm-up run (JIT only, dropped) uses this share of M. */
const WARMUP_LIVE_SHARE = 1 / 16;

/** One row of robson: one contender's run (the median-time run of `settings.repeat`). */
export interface RobsonRow extends WorkloadRow {
  liveLimitBytes: number;
  minBlockBytes: number;
  maxBlockBytes: number;
  /** Robson's bound for these parameters, in bytes. */
  boundBytes: number;
  /**
   * The peak footprint: the highest block end minus the arena's start (heaplab backends,
   * @thi.ng/malloc); for native rows, the highest block end minus the lowest block start.
   */
  footprintBytes: number;
  /** Highest block end minus lowest block start, for every row. */
  spanBytes: number;
  /** Distinct 4 KiB pages any block ever covered, in bytes; null when the C port's page set overflowed. */
  touchedBytes: number | null;
  /** The heaplab backend's own peak of used bytes (headers, rounding and padding included). */
  peakUsedBytes: number | null;
  /** True when the backend samples its peak (a lower bound). */
  peakUsedSampled?: boolean;
  /** Native rows: the port's VmHWM at the end and before its first malloc, in KiB. */
  maxRssKiB?: number;
  baselineRssKiB?: number;
  /** Mallocs and frees. */
  operations: number;
  /** The most requested bytes live at once (M at most). */
  peakLiveBytes: number;
  /** False when `maxIterations` (tests) stopped the run before its last phase. */
  complete: boolean;
  /** The median run's time, and every run's. */
  seconds: number;
  runs: number[];
  phases: RobsonPhase[];
}

/** The parameters of a timed run. */
function robsonParams(settings: BenchSettings, liveLimitBytes = ROBSON_LIVE_LIMIT_BYTES): RobsonParams {
  return {
    liveLimitBytes,
    minBlockBytes: ROBSON_MIN_BLOCK_BYTES,
    maxBlockBytes: ROBSON_MAX_BLOCK_BYTES,
    maxOperations: settings.maxIterations ?? Infinity,
    verify: settings.verify,
  };
}

/** One run's figures, before the median is taken. */
type RunFigures = Omit<RobsonRow, 'label' | 'kind' | 'runs' | 'note' | 'error'>;

/** The figures every row derives the same way from an outcome. */
function outcomeFigures(params: RobsonParams, outcome: RobsonOutcome, footprintBase: number): RunFigures {
  return {
    liveLimitBytes: params.liveLimitBytes,
    minBlockBytes: params.minBlockBytes,
    maxBlockBytes: params.maxBlockBytes,
    boundBytes: robsonBoundBytes(params.liveLimitBytes, params.minBlockBytes, params.maxBlockBytes),
    footprintBytes: outcome.highWater - footprintBase,
    spanBytes: outcome.highWater - outcome.lowestAddress,
    touchedBytes: outcome.touchedPages * TOUCH_PAGE_BYTES,
    peakUsedBytes: null,
    operations: outcome.operations,
    peakLiveBytes: outcome.peakLiveBytes,
    complete: outcome.complete,
    seconds: outcome.seconds,
    phases: outcome.phases,
  };
}

/**
 * One run on a fresh heaplab heap, which must be empty again afterwards.
 * @throws Error when the heap fills up, fails its check, or is not empty after the run
 */
export function runRobsonOnBackend(contender: Extract<Contender, { kind: 'heaplab' }>, params: RobsonParams): RunFigures {
  const heap: GlobalAllocator = createBackendHeap(contender.spec, ROBSON_HEAP_BYTES);
  try {
    heap.prefault();
    const usedBefore = heap.stats().usedBytes;
    const outcome = runRobsonAdversary(heap, loopMemory(heap.buffer), params);
    const report = heap.check();
    const stats = heap.stats();
    if (report.liveBlocks !== 0 || stats.usedBytes !== usedBefore) {
      throw new Error(`the heap is not empty after the run: ${report.liveBlocks} live blocks, ${stats.usedBytes} bytes used (${usedBefore} before)`);
    }
    return {
      ...outcomeFigures(params, outcome, heap.arenaStart),
      peakUsedBytes: stats.peakUsedBytes,
      ...(stats.peakUsedSampled ? { peakUsedSampled: true } : {}),
    };
  } finally {
    heap.detach();
  }
}

/**
 * One run on a fresh @thi.ng/malloc pool, which must have no used block afterwards.
 * @throws Error when the pool fills up or keeps used blocks
 */
export function runRobsonOnThing(params: RobsonParams): RunFigures {
  const buffer = createThingBuffer(ROBSON_HEAP_BYTES);
  // Page faults are not the allocator's cost: commit the buffer first, as the other workloads do.
  const bytes = new Uint8Array(buffer);
  for (let at = 0; at < bytes.length; at += PAGE_SIZE) bytes[at] = 0;
  const pool = openThingPool(buffer);
  const outcome = runRobsonAdversary(pool, loopMemory(buffer), params);
  const used = pool.stats().used.count;
  if (used !== 0) throw new Error(`@thi.ng/malloc still has ${used} used blocks after the run`);
  return outcomeFigures(params, outcome, THING_POOL_START);
}

/** One run of the C port. */
async function runRobsonNative(contender: NativeContender, params: RobsonParams, fill: 'memset' | 'bytes'): Promise<RunFigures> {
  const run = await runNativeRobson(contender.allocator, params, fill);
  return {
    liveLimitBytes: params.liveLimitBytes,
    minBlockBytes: params.minBlockBytes,
    maxBlockBytes: params.maxBlockBytes,
    boundBytes: robsonBoundBytes(params.liveLimitBytes, params.minBlockBytes, params.maxBlockBytes),
    footprintBytes: run.spanBytes,
    spanBytes: run.spanBytes,
    touchedBytes: run.touchedPages === null ? null : run.touchedPages * TOUCH_PAGE_BYTES,
    peakUsedBytes: null,
    maxRssKiB: run.maxRssKiB,
    baselineRssKiB: run.baselineRssKiB,
    operations: run.operations,
    peakLiveBytes: run.peakLiveBytes,
    complete: true,
    seconds: run.seconds,
    phases: run.phases,
  };
}

/** One run of `contender` with `params`. */
function runOnce(contender: Contender, params: RobsonParams, settings: BenchSettings): Promise<RunFigures> {
  switch (contender.kind) {
    case 'heaplab':
      return Promise.resolve(runRobsonOnBackend(contender, params));
    case 'thing':
      return Promise.resolve(runRobsonOnThing(params));
    case 'native':
      return runRobsonNative(contender, params, settings.fill);
    default:
      return Promise.reject(new Error(`robson does not apply to ${contender.label}`));
  }
}

/** What the reader must know about a row. */
function noteFor(contender: Contender, figures: RunFigures): string | undefined {
  const notes: string[] = [];
  if (contender.kind === 'native')
    notes.push(`the C port against ${contender.allocator === 'glibc' ? "the C library's malloc" : `${contender.allocator} (LD_PRELOAD)`}`);
  // An allocator that starts far from its arena's start (buddy takes the top first) has a
  // footprint that says where it starts, not how much it used.
  const lowest = figures.footprintBytes - figures.spanBytes;
  if (contender.kind !== 'native' && lowest >= figures.liveLimitBytes) {
    notes.push(`its lowest block is ${formatBytes(lowest)} above the arena's start, so its footprint is mostly untouched arena: read touched/M`);
  }
  if (!figures.complete) notes.push(`stopped after ${figures.operations} operations (maxIterations), ${figures.phases.length} phases complete`);
  return notes.length === 0 ? undefined : notes.join('; ');
}

/** The row of `runs` (non-empty): the run with the median time, with every run's time. */
function medianRow(contender: Contender, runs: readonly RunFigures[]): RobsonRow {
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  const note = noteFor(contender, median);
  return { label: contender.label, kind: contender.kind, ...median, runs: runs.map((run) => run.seconds), ...(note !== undefined ? { note } : {}) };
}

/** A row for a contender whose run failed. */
function failedRow(contender: Contender, params: RobsonParams, error: unknown): RobsonRow {
  return {
    label: contender.label,
    kind: contender.kind,
    liveLimitBytes: params.liveLimitBytes,
    minBlockBytes: params.minBlockBytes,
    maxBlockBytes: params.maxBlockBytes,
    boundBytes: robsonBoundBytes(params.liveLimitBytes, params.minBlockBytes, params.maxBlockBytes),
    footprintBytes: 0,
    spanBytes: 0,
    touchedBytes: null,
    peakUsedBytes: null,
    operations: 0,
    peakLiveBytes: 0,
    complete: false,
    seconds: 0,
    runs: [],
    phases: [],
    error: error instanceof Error ? error.message : String(error),
  };
}

/** A power-of-two parameter as `16 B`, `4 KiB`, `256 KiB`, `1 MiB`. */
function wholeBytes(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes / (1 << 10)} KiB`;
  return `${bytes} B`;
}

/** `value / reference` as `4.98`. */
function ratio(value: number | null, reference: number): string {
  return value === null || reference === 0 ? '-' : (value / reference).toFixed(2);
}

export const robsonWorkload: Workload<RobsonRow, 'robson'> = {
  name: 'robson',
  resultKey: 'robson',
  summary: "Robson's worst-case fragmentation adversary: footprint against M and Robson's bound",
  // @thi.ng/malloc and the C allocators face the same adversary; system has no addresses,
  // and bump never frees, so the adversary has nothing to work on.
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing' || contender.kind === 'native',
  heapBytesFor: () => ROBSON_HEAP_BYTES,
  stepsPerContender: () => 1,

  /** Each contender on its own fresh heap, one after the other, in this process (native: one program per run). */
  async run(contenders, settings, progress) {
    const params = robsonParams(settings);
    const rows: RobsonRow[] = [];
    for (const contender of contenders) {
      progress.step(`robson  ${contender.label}`);
      try {
        // The warm-up compiles the adversary and the allocator's paths; a C program needs none.
        if (settings.warmup && contender.kind !== 'native')
          await runOnce(contender, robsonParams(settings, params.liveLimitBytes * WARMUP_LIVE_SHARE), settings);
        const runs: RunFigures[] = [];
        for (let index = 0; index < Math.max(1, settings.repeat); index++) runs.push(await runOnce(contender, params, settings));
        rows.push(medianRow(contender, runs));
      } catch (error) {
        rows.push(failedRow(contender, params, error));
      }
    }
    return rows;
  },

  section(rows, run) {
    const params = { liveLimitBytes: ROBSON_LIVE_LIMIT_BYTES, minBlockBytes: ROBSON_MIN_BLOCK_BYTES, maxBlockBytes: ROBSON_MAX_BLOCK_BYTES };
    const bound = robsonBoundBytes(params.liveLimitBytes, params.minBlockBytes, params.maxBlockBytes);
    const headers = ['backend', 'footprint', 'footprint/M', 'touched/M', 'peak used', 'maxrss (growth)', 'time', 'min..max'];
    const body = rows.map((row) => {
      const sorted = [...row.runs].sort((a, b) => a - b);
      return [
        row.label,
        formatBytes(row.footprintBytes),
        ratio(row.footprintBytes, row.liveLimitBytes),
        ratio(row.touchedBytes, row.liveLimitBytes),
        row.peakUsedBytes === null ? '-' : `${row.peakUsedSampled === true ? '>=' : ''}${formatBytes(row.peakUsedBytes)}`,
        row.maxRssKiB === undefined || row.baselineRssKiB === undefined
          ? '-'
          : `${formatBytes(row.maxRssKiB * 1024)} (+${formatBytes((row.maxRssKiB - row.baselineRssKiB) * 1024)})`,
        formatSeconds(row.seconds),
        sorted.length > 1 ? `${formatSeconds(sorted[0]!)}..${formatSeconds(sorted[sorted.length - 1]!)}` : '-',
      ];
    });
    return {
      title:
        `robson (M = ${wholeBytes(params.liveLimitBytes)} live at most, blocks ${wholeBytes(params.minBlockBytes)}..${wholeBytes(params.maxBlockBytes)}; ` +
        `Robson's bound N = ${formatBytes(bound)} = ${(bound / params.liveLimitBytes).toFixed(2)} M)`,
      // Split, the memory figures stay together, and the times.
      table: renderTable(headers, body, figureColumns(headers), { width: run.width, groupStarts: [1, 6] }),
      notes: [
        'note: robson footprint: highest block end - arena start (heaplab, thi.ng) or - lowest block start (native); touched: distinct 4 KiB pages blocks covered',
      ],
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    const first = rows[0]!;
    const boundRatio = first.boundBytes / first.liveLimitBytes;
    // Touched pages, not the footprint: the same measure for every row, where buddy's
    // footprint is its arena's end and would flatten every other bar.
    const touched = rows.filter((row) => row.touchedBytes !== null);
    return [
      barChart({
        id: 'robson',
        title: 'robson: memory touched under the adversary, over M',
        caption: `Distinct 4 KiB pages the blocks covered, over M (blocks of ${wholeBytes(first.minBlockBytes)} to ${wholeBytes(first.maxBlockBytes)}, at most ${wholeBytes(first.liveLimitBytes)} live). The dashed line is Robson's bound (${boundRatio.toFixed(2)} M): what the best non-moving allocator needs in the worst case. Lower is better.`,
        data: touched.map((row) => {
          const ratio = row.touchedBytes! / row.liveLimitBytes;
          return {
            group: row.label,
            value: ratio,
            label: `${ratio.toFixed(2)} M`,
            tip: `${row.label}: ${formatBytes(row.touchedBytes)} touched, ${ratio.toFixed(2)} M`,
          };
        }),
        axisTitle: 'touched pages / M',
        axisFormat: '~g',
        scale: 'linear',
        reference: { value: boundRatio, label: `Robson's bound ${boundRatio.toFixed(2)} M` },
        colourGroups: true,
      }),
    ];
  },
};
