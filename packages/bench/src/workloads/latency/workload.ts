/**
 * latency: how long single malloc and free calls take (docs/workloads/latency.md), on a
 * fresh heap and on a fragmented one, for every contender with addresses. Each call (or
 * batch of k calls, when one is shorter than the clock resolves) is a sample of an HDR
 * histogram per (contender, level, op); a row reports its p50, p99, p99.9 and max in ns.
 */

import { CHART_PALETTE, CHART_WIDTH, VEGA_LITE_SCHEMA, vegaLiteSpec } from '../../report/chart.js';
import { formatBytes } from '../../report/format.js';
import { figureColumns, renderTable } from '../../report/text-table.js';
import type { Workload } from '../../run/workload.js';
import { type ClockCalibration, chooseClock } from './clock.js';
import { measureLevelIsolated } from './isolated.js';
import { FRAGMENT_BLOCKS, LATENCY_LEVELS, type LatencyFigures, TRANSIENT_BLOCKS } from './measure.js';
import { ALL_LATENCY_STEPS, failedLevelRows, type LatencyRow, measureLevel, WARMUP_SHARE } from './rows.js';
import { LATENCY_MAX_SIZE, LATENCY_MIN_SIZE, meanLatencySize } from './sizes.js';

/** Nanoseconds as `48 ns`, `1.27 µs`, `3.10 ms`. */
export function formatNs(ns: number): string {
  if (ns < 1000) return `${Math.round(ns)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toPrecision(3)} µs`;
  return `${(ns / 1e6).toPrecision(3)} ms`;
}

/** The points of the percentile chart, in order: the classic ticks and the max. */
const CHART_POINTS: readonly { label: string; figure: keyof LatencyFigures }[] = [
  { label: '50%', figure: 'p50Ns' },
  { label: '90%', figure: 'p90Ns' },
  { label: '99%', figure: 'p99Ns' },
  { label: '99.9%', figure: 'p999Ns' },
  { label: '99.99%', figure: 'p9999Ns' },
  { label: 'max', figure: 'maxNs' },
];

/** A range of figures as `40 ns` or `40..49 ns`. */
function nsRange(values: readonly number[]): string {
  const low = Math.min(...values);
  const high = Math.max(...values);
  return Math.round(low) === Math.round(high) ? formatNs(low) : `${Math.round(low)}..${formatNs(high)}`;
}

/** The clocks of `rows` (non-empty): each isolated row calibrated its own, so resolution and cost are ranges. */
function clockSummary(rows: readonly LatencyRow[]): string {
  const names = [...new Set(rows.map((row) => row.clock))].join(' / ');
  return `${names}: resolution <= ${nsRange(rows.map((row) => row.clockResolutionNs))}, ${nsRange(rows.map((row) => row.timerCostNs))} per reading subtracted`;
}

/** The lowest latency drawn on the chart's log axis (a 0 ns sample has no place on it). */
const CHART_FLOOR_NS = 1;

export type { LatencyRow };

export const latencyWorkload: Workload<LatencyRow, 'latency'> = {
  name: 'latency',
  resultKey: 'latency',
  summary: 'single malloc and free times (p50, p99, p99.9, max) on a fresh and a fragmented heap',
  allNote: `at most ${ALL_LATENCY_STEPS} timed steps per run`,
  // Only allocators with addresses in a heap the workload builds can be timed call by call:
  // system's allocation is V8's and its free is the garbage collector's, bump never frees (so
  // has no fragmented level), and the native ports run as programs of their own.
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing',
  stepsPerContender: () => LATENCY_LEVELS.length,

  /**
   * Each (contender, level) in a process of its own when `settings.isolate` (the clock then
   * calibrated there), else here, one after the other, with this process's clock.
   */
  async run(contenders, settings, progress) {
    const rows: LatencyRow[] = [];
    let calibration: ClockCalibration | Error | undefined;
    for (const contender of contenders) {
      for (const level of LATENCY_LEVELS) {
        progress.step(
          `latency  ${contender.label}  ${level}`,
          settings.durationSeconds * (Math.max(1, settings.repeat) + (settings.warmup ? WARMUP_SHARE : 0)),
        );
        try {
          if (settings.isolate) {
            rows.push(...(await measureLevelIsolated({ contender, level, settings })));
            continue;
          }
          if (calibration === undefined) {
            try {
              calibration = chooseClock().chosen;
            } catch (error) {
              calibration = error as Error;
            }
          }
          if (calibration instanceof Error) throw calibration;
          rows.push(...measureLevel(contender, level, settings, calibration, false));
        } catch (error) {
          rows.push(...failedLevelRows(contender, level, settings, error));
        }
      }
    }
    return rows;
  },

  section(rows, run) {
    const headers = ['backend', 'level', 'free blocks', 'malloc p50', 'p99', 'p99.9', 'max', 'free p50', 'p99', 'p99.9', 'max', 'samples', 'batch'];
    const body: string[][] = [];
    const seen = new Set<string>();
    for (const row of rows) {
      const key = `${row.label}\u0000${row.level}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const malloc = rows.find((other) => other.label === row.label && other.level === row.level && other.op === 'malloc');
      const free = rows.find((other) => other.label === row.label && other.level === row.level && other.op === 'free');
      const figures = (of: LatencyRow | undefined): string[] =>
        of === undefined ? ['-', '-', '-', '-'] : [formatNs(of.p50Ns), formatNs(of.p99Ns), formatNs(of.p999Ns), formatNs(of.maxNs)];
      body.push([row.label, row.level, String(row.freeBlocks), ...figures(malloc), ...figures(free), String(row.count), String(row.batch)]);
    }
    const clock = rows.length === 0 ? '' : `; clock ${clockSummary(rows)}`;
    return {
      title:
        `latency (one call, ns; ${formatBytes(LATENCY_MIN_SIZE)}..${formatBytes(LATENCY_MAX_SIZE)}, mean ${Math.round(meanLatencySize())} B; ` +
        `${TRANSIENT_BLOCKS} transient blocks; fragmented: ${FRAGMENT_BLOCKS} blocks, every other freed${clock})`,
      // Split, malloc's figures stay together, and free's: a row is a backend at a level.
      table: renderTable(headers, body, new Set([...figureColumns(headers)].filter((column) => column !== 1)), {
        width: run.width,
        keyColumns: 2,
        groupStarts: [2, 3, 7, 11],
      }),
      notes: ["note: latency free blocks: the allocator's own count when timing began; samples: per op; batch > 1: each sample is the mean call of a batch"],
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    const values = rows.flatMap((row) =>
      CHART_POINTS.map((point) => ({
        backend: row.label,
        panel: `${row.op}, ${row.level}`,
        percentile: point.label,
        ns: Math.max(CHART_FLOOR_NS, row[point.figure]),
      })),
    );
    return [
      {
        id: 'latency',
        title: 'latency: one call, by percentile',
        caption:
          `Time of one malloc or free at each percentile of its calls (log axis), on a fresh heap and after ${FRAGMENT_BLOCKS} blocks with every other one freed; ` +
          `the clock's cost (${nsRange(rows.map((row) => row.timerCostNs))}) subtracted, 0 drawn as ${CHART_FLOOR_NS} ns. Lower and flatter is better.`,
        spec: vegaLiteSpec({
          $schema: VEGA_LITE_SCHEMA,
          data: { values },
          facet: { field: 'panel', type: 'nominal', title: null, sort: ['malloc, fresh', 'malloc, fragmented', 'free, fresh', 'free, fragmented'] },
          columns: 2,
          spec: {
            width: CHART_WIDTH / 2 - 20,
            height: 200,
            mark: { type: 'line', point: true },
            encoding: {
              x: { field: 'percentile', type: 'ordinal', sort: CHART_POINTS.map((point) => point.label), title: 'percentile' },
              y: { field: 'ns', type: 'quantitative', scale: { type: 'log' }, title: 'ns per call' },
              color: { field: 'backend', type: 'nominal', scale: CHART_PALETTE, title: null },
            },
          },
        }),
      },
    ];
  },
};
