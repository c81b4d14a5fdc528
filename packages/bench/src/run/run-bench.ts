/**
 * One `heaplab bench` run: resolves the rows (backends and baselines), runs the chosen
 * workloads in order and gathers a `BenchResults`.
 */

import { cpus } from 'node:os';

import { findBackend, parseBackendSpec, registeredBackends } from '@heaplab/core';

import { runAllocPairsBench } from '../workloads/alloc-pairs/workload.js';
import { discoverBackends } from '../contenders/backends.js';
import { backendContender, type BaselineName, baselineContender, type Contender } from '../contenders/contender.js';
import { runGlibcThreadBench } from '../workloads/glibc-thread/workload.js';
import { runHeapEfficiencyBench } from '../workloads/heap-efficiency/workload.js';
import type { Progress } from './progress.js';
import { runRandomFreeBench } from '../workloads/random-free/workload.js';
import type { BenchResults } from '../report/results.js';

/** The workloads, as `heaplab bench` names them. */
export const WORKLOADS = ['glibc-thread', 'heap-efficiency', 'alloc-pairs', 'random-free', 'all'] as const;

/** One of `WORKLOADS`. */
export type WorkloadName = (typeof WORKLOADS)[number];

/** What `all` runs: the comparison plus the quick workloads. alloc-pairs only when named. */
export const ALL_WORKLOADS: readonly WorkloadName[] = ['glibc-thread', 'heap-efficiency', 'random-free'];

/** Everything a run needs; the CLI fills it from its options. */
export interface BenchRequest {
  workload: WorkloadName;
  /** Backend specs, or ['all'] for every registered backend. */
  backends: readonly string[];
  baselines: readonly BaselineName[];
  threads: readonly number[];
  durationSeconds: number;
  verify: boolean;
  heapBytes: number;
  /** Each one-thread row in a process of its own (see `ThroughputSettings.isolate`). */
  isolate: boolean;
  trials: number;
  seed: number;
  efficiencyHeapBytes: number;
}

/**
 * The heaplab rows for `specs`: each spec checked against the registry (after discovery).
 * @throws AllocError `UnknownBackend` naming the valid backends, `InvalidParam` for bad options
 */
export async function resolveBackends(specs: readonly string[]): Promise<Contender[]> {
  await discoverBackends();
  if (specs.includes('all')) return registeredBackends().map((descriptor) => backendContender(descriptor.name));
  return specs.map((spec) => {
    const parsed = parseBackendSpec(spec);
    findBackend(parsed.name).normalizeOptions(parsed.options);
    return backendContender(spec);
  });
}

/** Runs the request; failures of single rows are recorded in them, never thrown. */
export async function runBench(request: BenchRequest, contenders: readonly Contender[], progress: Progress): Promise<BenchResults> {
  const unavailable = await discoverBackends();
  const rows = [...contenders, ...request.baselines.map(baselineContender)];
  const workloads = request.workload === 'all' ? ALL_WORKLOADS : [request.workload];
  const settings = {
    threads: request.threads,
    durationSeconds: request.durationSeconds,
    verify: request.verify,
    heapBytes: request.heapBytes,
    isolate: request.isolate,
  };
  const results: BenchResults = {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      durationSeconds: request.durationSeconds,
      threads: [...request.threads],
      heapBytes: request.heapBytes,
      verify: request.verify,
      isolate: request.isolate,
    },
    unavailable,
    glibcThread: [],
    allocPairs: [],
    heapEfficiency: [],
    randomFree: [],
  };
  for (const workload of workloads) {
    if (workload === 'glibc-thread') results.glibcThread = await runGlibcThreadBench(rows, settings, progress);
    if (workload === 'alloc-pairs') results.allocPairs = await runAllocPairsBench(rows, settings, progress);
    if (workload === 'heap-efficiency') {
      results.heapEfficiency = runHeapEfficiencyBench(rows, { trials: request.trials, seed: request.seed, heapBytes: request.efficiencyHeapBytes }, progress);
    }
    if (workload === 'random-free') results.randomFree = runRandomFreeBench(rows, request.seed, progress);
  }
  return results;
}

/** Steps the progress indicator will count, for "n/N". */
export function countSteps(request: BenchRequest, contenders: number): number {
  const workloads = request.workload === 'all' ? ALL_WORKLOADS : [request.workload];
  const rows = contenders + request.baselines.length;
  let steps = 0;
  for (const workload of workloads) {
    if (workload === 'glibc-thread') steps += rows * request.threads.length;
    if (workload === 'alloc-pairs') steps += (rows - (request.baselines.includes('native') ? 1 : 0)) * request.threads.length;
    if (workload === 'heap-efficiency') steps += contenders + (request.baselines.includes('thi.ng') ? 1 : 0);
    if (workload === 'random-free') steps += contenders + (request.baselines.includes('thi.ng') ? 1 : 0);
  }
  return steps;
}
