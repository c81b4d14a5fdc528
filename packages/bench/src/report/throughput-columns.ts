/**
 * The columns every throughput table starts with (who, how many threads, how fast (the
 * median of the repeated runs, and their spread), against `system` and against the best
 * heaplab backend at the same thread count, CPU time over wall time, peak used), for the
 * workloads whose rows are `ThroughputRow`s.
 */

import type { ThroughputRow } from '../run/throughput-rows.js';
import { formatBytes, formatCpuShare, formatRate, formatRateRange, formatRatio } from './format.js';
import { FAR_ROUND_TRIP_NS } from '../run/line-round-trip.js';

/** The headers of `throughputColumns`, with the name of the rate. */
export function throughputHeaders(rateName: string): string[] {
  return ['backend', 'threads', rateName, 'min..max', 'vs system', 'vs best', 'cpu/wall', 'peak used'];
}

/** The columns of `throughputHeaders` that hold figures (right-aligned). */
export const THROUGHPUT_FIGURE_COLUMNS: readonly number[] = [1, 2, 3, 4, 5, 6, 7];

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
      'The two CPUs were far apart then, which slows threads that share lines (the locked backends) and not threads that share none (docs/speed.md)',
  ];
}

/** The first columns of each of `rows` (successful rows), in `throughputHeaders` order. */
export function throughputColumns(rows: readonly ThroughputRow[]): string[][] {
  const { best, system } = references(rows);
  return rows.map((row) => [
    row.label,
    String(row.threads),
    formatRate(row.perSecond),
    formatRateRange(row.perSecondMin, row.perSecondMax),
    formatRatio(row.perSecond, system.get(row.threads)),
    row.kind === 'heaplab' ? formatRatio(row.perSecond, best.get(row.threads)) : '-',
    formatCpuShare(row.cpuSeconds, row.wallSeconds),
    `${row.peakUsedSampled === true ? SAMPLED_MARK : ''}${formatBytes(row.peakUsedBytes)}`,
  ]);
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
