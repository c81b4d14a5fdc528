/**
 * The charts of the workloads whose rows are `ThroughputRow`s: the rate per backend and
 * thread count, and the memory a run used (apart from chart.ts, which the workload type
 * names, so that the row type's module does not come back to it).
 */

import type { ThroughputRow } from '../run/throughput-rows.js';
import { type BarDatum, barChart, type Chart, threadsLabel } from './chart.js';
import { formatBytes, formatRate } from './format.js';

/** How `throughputChart` names what it counts. */
export interface ThroughputChartOptions {
  id: string;
  title: string;
  caption: string;
  rows: readonly ThroughputRow[];
  /** What one iteration is, plural: `pairs`, `allocations`. */
  unit: string;
}

/**
 * The rate of every row: one group of bars per backend, one bar per thread count (grouped,
 * so that two thread counts stay two bars whatever their values), the median with the
 * min..max of the repeated runs as an error bar.
 */
export function throughputChart(options: ThroughputChartOptions): Chart {
  const threadCounts = new Set(options.rows.map((row) => row.threads));
  const data = options.rows.map((row): BarDatum => {
    const spread = row.perSecondMin !== undefined && row.perSecondMax !== undefined && (row.runs?.length ?? 0) > 1;
    return {
      group: row.label,
      ...(threadCounts.size > 1 ? { series: threadsLabel(row.threads) } : {}),
      value: row.perSecond,
      ...(spread ? { low: row.perSecondMin!, high: row.perSecondMax! } : {}),
      label: formatRate(row.perSecond),
      tip:
        `${row.label}, ${threadsLabel(row.threads)}: ${formatRate(row.perSecond)} ${options.unit}` +
        (spread ? ` (median of ${row.runs!.length} runs, ${formatRate(row.perSecondMin!)}..${formatRate(row.perSecondMax!)})` : ''),
    };
  });
  return barChart({ id: options.id, title: options.title, caption: options.caption, data, axisTitle: `${options.unit} per second`, seriesTitle: 'threads' });
}

/** One row's memory figures for `memoryChart`. */
export interface MemoryFigures {
  label: string;
  threads?: number;
  peakUsedBytes: number | null;
  peakUsedSampled?: boolean;
  touchedBytes?: number | null;
}

/** The caption's sentence on what "memory touched" is. */
export const TOUCHED_MEANING =
  'Memory touched: the 4 KiB pages of the arena that hold a non-zero byte after the run (the heap starts all zeros), so a lower bound on the pages the run wrote. Peak used: the most bytes the backend had handed out or kept for itself at once.';

/**
 * Peak used beside memory touched, per backend (and thread count), on a log axis: the two
 * differ by decades between backends, and a linear axis turned the small ones into hairlines.
 */
export function memoryChart(options: { id: string; title: string; caption: string; rows: readonly MemoryFigures[] }): Chart {
  const threadCounts = new Set(options.rows.map((row) => row.threads));
  const data: BarDatum[] = [];
  for (const row of options.rows) {
    const at = threadCounts.size > 1 && row.threads !== undefined ? `${threadsLabel(row.threads)}, ` : '';
    const measures: [string, number | null | undefined, string][] = [
      ['peak used', row.peakUsedBytes, row.peakUsedSampled === true ? ' (sampled: a lower bound)' : ''],
      ['memory touched', row.touchedBytes, ''],
    ];
    for (const [measure, bytes, note] of measures) {
      if (bytes === null || bytes === undefined) continue;
      data.push({
        group: row.label,
        series: `${at}${measure}`,
        value: bytes,
        label: formatBytes(bytes),
        tip: `${row.label}, ${at}${measure}: ${formatBytes(bytes)}${note}`,
      });
    }
  }
  return barChart({ ...options, data, axisTitle: 'bytes', axisFormat: '~s', scale: 'log' });
}
