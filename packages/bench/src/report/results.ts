/**
 * What one `heaplab bench` run produces: its settings, the backend packages that could not be
 * imported, and each workload's rows under the workload's `resultKey`. `--json` writes it as
 * it is; the summary and the report read it.
 */

import type { UnavailableBackend } from '../contenders/backends.js';
import type { BenchMeta, Workload, WorkloadRow } from '../run/workload.js';
import type { WORKLOADS } from '../workloads/index.js';

export type { BenchMeta };

/** The row type of a workload. */
type RowOf<W> = W extends Workload<infer Row, string> ? Row : never;

/** Each listed workload's rows, under its key; empty for a workload that did not run. */
export type WorkloadResults = { [W in (typeof WORKLOADS)[number] as W['resultKey']]: RowOf<W>[] };

/** Everything one `heaplab bench` run measured. */
export type BenchResults = { meta: BenchMeta; unavailable: UnavailableBackend[] } & WorkloadResults;

/** The rows of `workload` in `results` (a workload that did not run has none). */
export function rowsOf(results: BenchResults, workload: Workload): WorkloadRow[] {
  return (results as unknown as Record<string, WorkloadRow[] | undefined>)[workload.resultKey] ?? [];
}
