/**
 * The summary printed at the end of a run, readable in a terminal: each workload's section
 * in list order, then the notes, the failures and the backend packages that were missing,
 * laid out to the terminal's width (tables split, titles and notes wrapped).
 */

import { rowsOf, type BenchResults } from './results.js';
import { TEXT_WIDTH, wrapText } from './text-table.js';
import type { RunContext, Workload, WorkloadRow } from '../run/workload.js';
import { WORKLOAD_LIST } from '../workloads/index.js';

/** What a section sees of `results`: the meta, the width and other workloads' successful rows. */
export function runContextOf(results: BenchResults, width: number = TEXT_WIDTH): RunContext {
  return {
    meta: results.meta,
    width,
    rowsOf: <R extends WorkloadRow>(workload: Workload<R>) =>
      (rowsOf(results, workload as unknown as Workload) as R[]).filter((row) => row.error === undefined),
  };
}

/** Everything the terminal shows at the end of a run, no line wider than `width` but a word that is. */
export function summary(results: BenchResults, width: number = TEXT_WIDTH): string {
  const sections: string[] = [];
  const run = runContextOf(results, width);
  const notes = new Set<string>(results.unavailable.map((missing) => `not available: ${missing.package}: ${missing.reason}`));
  for (const workload of WORKLOAD_LIST) {
    const rows = rowsOf(results, workload);
    if (rows.length === 0) continue;
    const section = workload.section(
      rows.filter((row) => row.error === undefined),
      run,
    );
    sections.push(`${wrapText(section.title, width)}\n${section.table}`);
    for (const note of section.notes ?? []) notes.add(note);
  }
  for (const workload of WORKLOAD_LIST) {
    for (const row of rowsOf(results, workload)) {
      const threads = row.threads !== undefined ? ` (${row.threads} thread${row.threads === 1 ? '' : 's'})` : '';
      if (row.error !== undefined) notes.add(`FAILED: ${row.label}${threads}: ${row.error}`);
      else if (row.note !== undefined) notes.add(`note: ${row.label}: ${row.note}`);
    }
  }
  if (notes.size > 0) sections.push(wrapText([...notes].join('\n'), width));
  return sections.join('\n\n');
}
