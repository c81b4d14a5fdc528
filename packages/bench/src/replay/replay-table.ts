/**
 * `heaplab replay`'s text: per backend a table like CS:APP's driver prints (trace, valid,
 * util, ops, secs, Kops/s, with CPU seconds beside the wall seconds), its totals line and
 * "Perf index = ... (util) + ... (thru) = .../100", each invalid trace's failure; then one
 * table of every backend's index, after the weights and the reference.
 */

import { renderTable, TEXT_WIDTH, wrapText } from '../report/text-table.js';
import { END_OF_TRACE_OP } from './replay-engine.js';
import type { ReplayFailure } from './replay-thread.js';
import type { BackendReplays, ReplayResults } from './replay-suite.js';

const percent = (value: number | null): string => (value === null ? '-' : `${(value * 100).toFixed(1)}%`);
const kops = (value: number | null): string => (value === null ? '-' : (value / 1000).toFixed(value < 10_000 ? 1 : 0));
const secondsText = (value: number | null): string => (value === null ? '-' : value.toPrecision(3));

/** A failure as one line: where (the request, 1-based as the trace counts them) and what. */
export function describeFailure(failure: ReplayFailure): string {
  if (failure.op === END_OF_TRACE_OP) return `at the end of the trace: ${failure.message}`;
  if (failure.index < 0) return failure.message;
  return `request ${failure.index + 1} (${failure.op}, id ${failure.id}, thread ${failure.thread}): ${failure.message}`;
}

/** One backend's table, totals, index line and failures, no line wider than `width` but a word that is. */
export function backendTable(row: BackendReplays, width: number = TEXT_WIDTH): string {
  const headers = ['trace', 'valid', 'util', 'ops', 'secs', 'cpu secs', 'Kops/s'];
  const rows = row.traces.map((trace) => [
    trace.trace,
    trace.valid ? 'yes' : 'no',
    percent(trace.utilization),
    String(trace.operations),
    secondsText(trace.seconds),
    secondsText(trace.cpuSeconds),
    kops(trace.opsPerSecond),
  ]);
  const { score } = row;
  rows.push([
    'Total',
    `${score.validTraces}/${score.traces}`,
    percent(score.utilization),
    String(score.operations),
    secondsText(score.seconds),
    '',
    kops(score.throughput),
  ]);
  const lines = [
    `${row.backend}${row.reference ? ' (reference)' : ''}:`,
    renderTable(headers, rows, new Set([2, 3, 4, 5, 6]), { width }),
    `Perf index = ${score.utilizationPoints.toFixed(1)} (util) + ${score.throughputPoints.toFixed(1)} (thru) = ${score.index.toFixed(1)}/100`,
  ];
  for (const trace of row.traces) if (trace.failure !== null) lines.push(`invalid: ${trace.trace}: ${describeFailure(trace.failure)}`);
  if (score.validTraces < score.traces) lines.push('(an invalid trace scores the backend 0, as the driver does)');
  return wrapText(lines.join('\n'), width);
}

/** The whole output: each backend's table, then the weights, the reference and the summary; `width` as `backendTable`'s. */
export function replayText(results: ReplayResults, width: number = TEXT_WIDTH): string {
  const { weights, reference } = results;
  const summary = renderTable(
    ['backend', 'valid', 'util', 'Kops/s', 'vs ref', 'index'],
    results.backends.map((row) => [
      `${row.backend}${row.reference ? ' (reference)' : ''}`,
      `${row.score.validTraces}/${row.score.traces}`,
      percent(row.score.utilization),
      kops(row.score.throughput),
      row.score.throughputRatio === null ? '-' : row.score.throughputRatio.toFixed(2),
      row.score.index.toFixed(1),
    ]),
    new Set([2, 3, 4, 5]),
    { width },
  );
  return [
    ...results.backends.map((row) => backendTable(row, width)),
    wrapText(
      `Perf index = 100 × (${weights.utilization} × util + ${weights.throughput} × min(1, Kops/s ÷ reference's)); ` +
        `reference ${reference.backend} at ${kops(reference.throughput)} Kops/s, replayed in this run; ` +
        `util = peak live payload ÷ high-water footprint; secs = median of ${results.repeat} timed pass${results.repeat === 1 ? '' : 'es'}; ` +
        'cpu secs = the whole process (every thread)',
      width,
    ),
    summary,
  ].join('\n\n');
}
