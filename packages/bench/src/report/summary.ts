/**
 * The summary printed at the end of a run, readable in a terminal: each workload's section
 * in list order, then the notes, the failures and the backend packages that were missing.
 */

import { rowsOf, type BenchResults } from './results.js';
import type { RunContext, Workload, WorkloadRow } from '../run/workload.js';
import { WORKLOAD_LIST } from '../workloads/index.js';

/** What a section sees of `results`: the meta and other workloads' successful rows. */
export function runContextOf(results: BenchResults): RunContext {
  return {
    meta: results.meta,
    rowsOf: <R extends WorkloadRow>(workload: Workload<R>) =>
      (rowsOf(results, workload as unknown as Workload) as R[]).filter((row) => row.error === undefined),
  };
}

/** Everything the terminal shows at the end of a run. */
export function summary(results: BenchResults): string {
  const sections: string[] = [];
  const run = runContextOf(results);
  const notes = new Set<string>(results.unavailable.map((missing) => `not available: ${missing.package}: ${missing.reason}`));
  for (const workload of WORKLOAD_LIST) {
    const rows = rowsOf(results, workload);
    if (rows.length === 0) continue;
    const section = workload.section(
      rows.filter((row) => row.error === undefined),
      run,
    );
    sections.push(`${section.title}\n${section.table}`);
    for (const note of section.notes ?? []) notes.add(note);
  }
  for (const workload of WORKLOAD_LIST) {
    for (const row of rowsOf(results, workload)) {
      const threads = row.threads !== undefined ? ` (${row.threads} thread${row.threads === 1 ? '' : 's'})` : '';
      if (row.error !== undefined) notes.add(`FAILED: ${row.label}${threads}: ${row.error}`);
      else if (row.note !== undefined) notes.add(`note: ${row.label}: ${row.note}`);
    }
  }
  if (notes.size > 0) sections.push([...notes].join('\n'));
  return sections.join('\n\n');
}
