/**
 * One `heaplab bench` run: each chosen workload in turn over the contenders it applies to,
 * gathered into one `BenchResults`.
 */

import { cpus, hostname } from 'node:os';

import { discoverBackends } from '../contenders/backends.js';
import type { Contender } from '../contenders/contender.js';
import { commandLine, heaplabVersion } from '../report/provenance.js';
import type { BenchResults } from '../report/results.js';
import { WORKLOAD_LIST } from '../workloads/index.js';
import type { Progress } from './progress.js';
import type { BenchSettings, Workload, WorkloadRow } from './workload.js';

/**
 * Runs `workloads` in order; failures of single rows are recorded in them, never thrown.
 * Every listed workload has its key in the results, empty when it did not run. `command` is
 * what the report's header shows as the command that made the run (this process's, by default).
 */
export async function runBench(
  workloads: readonly Workload[],
  contenders: readonly Contender[],
  settings: BenchSettings,
  progress: Progress,
  command: string = commandLine(process.argv),
): Promise<BenchResults> {
  const unavailable = await discoverBackends();
  const rows: Record<string, WorkloadRow[]> = Object.fromEntries(WORKLOAD_LIST.map((workload) => [workload.resultKey, []]));
  for (const workload of workloads) {
    rows[workload.resultKey] = await workload.run(
      contenders.filter((contender) => workload.appliesTo(contender)),
      settings,
      progress,
    );
  }
  const meta = {
    version: heaplabVersion(),
    command,
    host: hostname(),
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    durationSeconds: settings.durationSeconds,
    repeat: settings.repeat,
    warmup: settings.warmup,
    ...(settings.interleave === true ? { interleave: true } : {}),
    threads: [...settings.threads],
    heapBytes: settings.heapBytes,
    verify: settings.verify,
    isolate: settings.isolate,
  };
  // The keys come from the list, which is what `BenchResults` is made of.
  return { meta, unavailable, ...rows } as BenchResults;
}

/** Steps the progress indicator will count, for "n/N". */
export function countSteps(workloads: readonly Workload[], contenders: readonly Contender[], settings: BenchSettings): number {
  let steps = 0;
  for (const workload of workloads) {
    steps += contenders.filter((contender) => workload.appliesTo(contender)).length * workload.stepsPerContender(settings);
  }
  return steps;
}
