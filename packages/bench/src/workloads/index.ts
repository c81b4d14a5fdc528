/**
 * The workloads, in the order the summary, the report and `bench all` show them. A new
 * workload is a folder beside these (its `Workload` object, its loops, its table) and one
 * line in `WORKLOADS`; nothing else in the bench names a workload.
 */

import type { ThreadLoop } from '../run/thread-loop.js';
import type { Workload } from '../run/workload.js';
import { allocPairsWorkload } from './alloc-pairs/workload.js';
import { allocTestWorkload } from './alloc-test/workload.js';
import { arceosWorkload } from './arceos/workload.js';
import { cacheScratchWorkload } from './cache-scratch/workload.js';
import { cacheThrashWorkload } from './cache-thrash/workload.js';
import { glibcSimpleWorkload } from './glibc-simple/workload.js';
import { glibcThreadWorkload } from './glibc-thread/workload.js';
import { heapEfficiencyWorkload } from './heap-efficiency/workload.js';
import { larsonWorkload } from './larson/workload.js';
import { latencyWorkload } from './latency/workload.js';
import { midLargeWorkload } from './mid-large/workload.js';
import { mstressWorkload } from './mstress/workload.js';
import { robsonWorkload } from './robson/workload.js';
import { rptestWorkload } from './rptest/workload.js';
import { sh6Workload } from './sh6bench/workload.js';
import { xmallocWorkload } from './xmalloc-test/workload.js';

/** Every workload; the tuple's types give each workload's key and row type to `BenchResults`. */
export const WORKLOADS = [
  glibcThreadWorkload,
  heapEfficiencyWorkload,
  latencyWorkload,
  allocPairsWorkload,
  arceosWorkload,
  robsonWorkload,
  larsonWorkload,
  xmallocWorkload,
  mstressWorkload,
  rptestWorkload,
  cacheScratchWorkload,
  cacheThrashWorkload,
  allocTestWorkload,
  sh6Workload,
  midLargeWorkload,
  glibcSimpleWorkload,
] as const;

/** The list as plain workloads, for code that treats them all alike. */
export const WORKLOAD_LIST: readonly Workload[] = WORKLOADS;

/** What `heaplab bench` takes besides a workload's name: every workload, in their short forms. */
export const ALL = 'all';

/**
 * The workloads `choice` names: one by its name, or those of `all`.
 * @throws Error naming the valid choices for anything else
 */
export function selectWorkloads(choice: string): Workload[] {
  if (choice === ALL) return [...WORKLOAD_LIST];
  const named = WORKLOAD_LIST.find((workload) => workload.name === choice);
  if (named === undefined) throw new Error(`no workload '${choice}' (valid: ${[...WORKLOAD_LIST.map((workload) => workload.name), ALL].join(', ')})`);
  return [named];
}

/**
 * The thread loop of the workload called `name`: how a worker or an isolated process, given
 * a name, finds the code to run.
 * @throws Error when no workload of that name runs on threads
 */
export function threadLoopOf(name: string): ThreadLoop {
  const loop = WORKLOAD_LIST.find((workload) => workload.name === name)?.threadLoop;
  if (loop === undefined) throw new Error(`no workload '${name}' runs on threads`);
  return loop;
}
