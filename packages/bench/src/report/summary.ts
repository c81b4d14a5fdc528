/**
 * The summary tables printed at the end of a run, readable in a terminal: aligned columns,
 * numbers right-aligned, ratios against `system` (what JS does without heaplab) and against
 * the best heaplab backend at the same thread count.
 */

import { formatBytes, formatRate, formatRatio, formatSeconds } from './format.js';
import type { BenchResults, EfficiencyRow, ThroughputRow } from './results.js';

type Cell = string;

/** Lays out `rows` under `headers`; columns listed in `rightAligned` are numbers. */
export function renderTable(headers: readonly string[], rows: readonly (readonly Cell[])[], rightAligned: ReadonlySet<number>): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly Cell[]): string =>
    cells
      .map((cell, column) => (rightAligned.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/** The best heaplab backend's rate per thread count, and the system baseline's. */
export function references(rows: readonly ThroughputRow[]): { best: Map<number, number>; system: Map<number, number> } {
  const best = new Map<number, number>();
  const system = new Map<number, number>();
  for (const row of rows) {
    if (row.error !== undefined) continue;
    if (row.kind === 'heaplab' && row.perSecond > (best.get(row.threads) ?? 0)) best.set(row.threads, row.perSecond);
    if (row.kind === 'system') system.set(row.threads, row.perSecond);
  }
  return { best, system };
}

/** The glibc-thread summary: the table a user compares backends with. */
export function glibcThreadTable(rows: readonly ThroughputRow[], efficiency: readonly EfficiencyRow[]): string {
  const { best, system } = references(rows);
  const efficiencyOf = new Map(efficiency.filter((row) => row.error === undefined).map((row) => [row.label, row.efficiencyPercent]));
  const body = rows
    .filter((row) => row.error === undefined)
    .map((row) => [
      ...rateColumns(row, best, system),
      formatBytes(row.peakFootprintBytes),
      efficiencyOf.has(row.label) ? `${efficiencyOf.get(row.label)!.toFixed(1)} %` : '-',
    ]);
  return renderTable(
    ['backend', 'threads', 'iterations/s', 'vs system', 'vs best', 'peak used', 'peak footprint', 'heap efficiency'],
    body,
    new Set([1, 2, 3, 4, 5, 6, 7]),
  );
}

/** Marks a peak that the backend samples: the true peak may be higher. */
const SAMPLED_MARK = '>=';

/** The columns both throughput tables start with: who, how many threads, how fast, peak used. */
function rateColumns(row: ThroughputRow, best: Map<number, number>, system: Map<number, number>): string[] {
  return [
    row.label,
    String(row.threads),
    formatRate(row.perSecond),
    formatRatio(row.perSecond, system.get(row.threads)),
    row.kind === 'heaplab' ? formatRatio(row.perSecond, best.get(row.threads)) : '-',
    `${row.peakUsedSampled === true ? SAMPLED_MARK : ''}${formatBytes(row.peakUsedBytes)}`,
  ];
}

/** The alloc-pairs table. */
export function allocPairsTable(rows: readonly ThroughputRow[]): string {
  const { best, system } = references(rows);
  const body = rows
    .filter((row) => row.error === undefined)
    .map((row) => rateColumns(row, best, system));
  return renderTable(['backend', 'threads', 'pairs/s', 'vs system', 'vs best', 'peak used'], body, new Set([1, 2, 3, 4, 5]));
}

/** The heap-efficiency table. */
export function efficiencyTable(rows: readonly EfficiencyRow[]): string {
  const body = rows
    .filter((row) => row.error === undefined)
    .map((row) => [row.label, `${row.efficiencyPercent.toFixed(1)} %`, String(row.trials), String(row.seed), formatSeconds(row.seconds)]);
  return renderTable(['backend', 'efficiency', 'trials', 'seed', 'run time'], body, new Set([1, 2, 3, 4]));
}

/** The random-free table: one column per phase. */
export function randomFreeTable(results: BenchResults): string {
  const rows = results.randomFree.filter((row) => row.error === undefined);
  const rounds = rows[0]?.phases ?? [];
  const headers = ['backend', ...rounds.flatMap((round) => [`alloc ${round.blocks}x${round.blockBytes}`, `free random`])];
  const body = rows.map((row) => [row.label, ...row.phases.flatMap((phase) => [formatSeconds(phase.allocateSeconds), formatSeconds(phase.freeSeconds)])]);
  return renderTable(headers, body, new Set(headers.map((_, column) => column).slice(1)));
}

/** Notes, failures and unavailable backends, one line each. */
export function footnotes(results: BenchResults): string[] {
  const lines: string[] = [];
  for (const missing of results.unavailable) lines.push(`not available: ${missing.package}: ${missing.reason}`);
  const seen = new Set<string>();
  const add = (text: string): void => {
    if (!seen.has(text)) lines.push(text);
    seen.add(text);
  };
  const all = [...results.glibcThread, ...results.allocPairs, ...results.heapEfficiency, ...results.randomFree];
  if ([...results.glibcThread, ...results.allocPairs].some((row) => row.error === undefined && row.peakUsedSampled === true)) {
    add(`note: peak used marked ${SAMPLED_MARK}: sampled by the backend (as it takes pages, and when figures are read), so a lower bound`);
  }
  for (const row of all) {
    const threads = 'threads' in row ? ` (${row.threads} thread${row.threads === 1 ? '' : 's'})` : '';
    if (row.error !== undefined) add(`FAILED: ${row.label}${threads}: ${row.error}`);
    else if (row.note !== undefined) add(`note: ${row.label}: ${row.note}`);
  }
  return lines;
}

/** Everything the terminal shows at the end of a run. */
export function summary(results: BenchResults): string {
  const sections: string[] = [];
  if (results.glibcThread.length > 0) {
    sections.push(`glibc-thread (bench-malloc-thread, ${results.meta.durationSeconds} s per run)\n${glibcThreadTable(results.glibcThread, results.heapEfficiency)}`);
  }
  if (results.heapEfficiency.length > 0) sections.push(`heap efficiency (${formatBytes(results.heapEfficiency[0]!.heapBytes)} heap)\n${efficiencyTable(results.heapEfficiency)}`);
  if (results.allocPairs.length > 0) sections.push(`alloc-pairs (1000 live blocks per thread, 16..512 bytes)\n${allocPairsTable(results.allocPairs)}`);
  if (results.randomFree.length > 0) sections.push(`random-free (ArceOS)\n${randomFreeTable(results)}`);
  const notes = footnotes(results);
  if (notes.length > 0) sections.push(notes.join('\n'));
  return sections.join('\n\n');
}
