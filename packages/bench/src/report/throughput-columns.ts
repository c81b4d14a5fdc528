/**
 * The throughput table of the workloads whose rows are `ThroughputRow`s: who and on how many
 * threads (the key columns); how fast (the median of the repeated runs, and their spread),
 * against `system` and against the best heaplab backend at the same thread count; what it
 * cost (CPU time over wall time); and memory (peak used). A workload may add columns to the
 * cost and the memory groups. When it is wider than the width, it is split by those groups.
 */

import type { ThroughputRow } from '../run/throughput-rows.js';
import { formatBytes, formatCpuShare, formatRate, formatRateRange, formatRatio } from './format.js';
import { figureColumns, renderTable } from './text-table.js';
import { FAR_ROUND_TRIP_NS } from '../run/line-round-trip.js';

/** Columns a workload adds to a group of the throughput table: their headers and each row's cells. */
export interface ExtraColumns<R> {
  headers: readonly string[];
  cells(row: R): string[];
}

/** What a workload adds to its throughput table. */
export interface ThroughputExtras<R> {
  /** After cpu/wall. */
  cost?: ExtraColumns<R>;
  /** After peak used. */
  memory?: ExtraColumns<R>;
}

/**
 * The table of `rows` (successful rows), `rateName` naming the rate (`iterations/s`), no wider
 * than `width` (`renderTable`'s default when not given). Every cell is a figure but the backend.
 */
export function throughputTable<R extends ThroughputRow>(rateName: string, rows: readonly R[], width?: number, extras: ThroughputExtras<R> = {}): string {
  const { best, system } = references(rows);
  const cost = extras.cost?.headers ?? [];
  const memory = extras.memory?.headers ?? [];
  const keys = ['backend', 'threads'];
  const speed = [rateName, 'min..max', 'vs system', 'vs best'];
  const headers = [...keys, ...speed, 'cpu/wall', ...cost, 'peak used', ...memory];
  const body = rows.map((row) => [
    row.label,
    String(row.threads),
    formatRate(row.perSecond),
    // One run's spread is its rate again: a dash, which lets a too wide table leave the column out.
    (row.runs?.length ?? 0) > 1 ? formatRateRange(row.perSecondMin, row.perSecondMax) : '-',
    formatRatio(row.perSecond, system.get(row.threads)),
    row.kind === 'heaplab' ? formatRatio(row.perSecond, best.get(row.threads)) : '-',
    formatCpuShare(row.cpuSeconds, row.wallSeconds),
    ...(extras.cost?.cells(row) ?? []),
    `${row.peakUsedSampled === true ? SAMPLED_MARK : ''}${formatBytes(row.peakUsedBytes)}`,
    ...(extras.memory?.cells(row) ?? []),
  ]);
  const costStart = keys.length + speed.length;
  const memoryStart = costStart + 1 + cost.length;
  return renderTable(headers, body, figureColumns(headers), {
    width,
    keyColumns: keys.length,
    groupStarts: [keys.length, costStart, memoryStart],
  });
}

/** Marks a peak that the backend samples: the true peak may be higher. */
const SAMPLED_MARK = '>=';

/** The note that explains `SAMPLED_MARK`, when a row shows it. */
export function sampledPeakNotes(rows: readonly ThroughputRow[]): string[] {
  return rows.some((row) => row.peakUsedSampled === true)
    ? [`note: peak used marked ${SAMPLED_MARK}: sampled by the backend (as it takes pages, and when figures are read), so a lower bound`]
    : [];
}

/**
 * A note naming the multi-thread rows measured while a cache line's round trip between two
 * cores was `FAR_ROUND_TRIP_NS` or more, before or after the row: the host had placed the two
 * CPUs far apart, which slows threads that share lines and not threads that share none
 * (docs/speed.md, "When two threads are slow").
 */
export function farPlacementNotes(rows: readonly ThroughputRow[]): string[] {
  const far = rows.filter((row) => row.lineRoundTripNs !== undefined && Math.max(...row.lineRoundTripNs) >= FAR_ROUND_TRIP_NS);
  if (far.length === 0) return [];
  const named = far.map((row) => `${row.label} on ${row.threads} threads (${row.lineRoundTripNs!.map((ns) => ns.toFixed(0)).join(' and ')} ns)`);
  return [
    `note: a cache line took ${FAR_ROUND_TRIP_NS} ns or more from one core to another and back, before or after these rows: ${named.join(', ')}. ` +
      'The two CPUs were far apart then, which slows threads that share cache lines (on glibc-thread, the locked backends; on xmalloc-test, every producer and consumer) and not threads that share none (docs/speed.md)',
  ];
}

/** The best heaplab backend's rate per thread count, and the system baseline's. */
function references(rows: readonly ThroughputRow[]): { best: Map<number, number>; system: Map<number, number> } {
  const best = new Map<number, number>();
  const system = new Map<number, number>();
  for (const row of rows) {
    if (row.kind === 'heaplab' && row.perSecond > (best.get(row.threads) ?? 0)) best.set(row.threads, row.perSecond);
    if (row.kind === 'system') system.set(row.threads, row.perSecond);
  }
  return { best, system };
}
