/**
 * Running a workload for a heap map, and taking the heap at given moments of it
 * (docs/heap-maps.md). A run is deterministic: one thread, in this process, on a fresh heap,
 * with a fixed number of iterations and no clock. It goes through a `RecordingAllocator`,
 * which counts allocator calls; "at 50 %" is the moment after half of the run's calls. A
 * first run counts them, a second takes the moments (and must make as many calls, or the run
 * was not deterministic and the maps would lie). Loops run with `leaveLive`, so 100 % is the
 * heap as the workload left it, its final clean-up skipped.
 *
 * What can be mapped: every workload with a thread loop (run as its one-thread share), and
 * the runs a workload offers instead (`Workload.inspectRuns`: ArceOS's single-thread tests,
 * `arceos:vec_2` and the like, and `random-free`).
 */

import type { GlobalAllocator, HeapRegion, StatsTable } from '@heaplab/core';

import type { BackendContender } from '../contenders/contender.js';
import { createBackendHeap } from '../contenders/backends.js';
import { type LoopLimits, loopMemory, RUN_CONTROL_BYTES } from '../run/address-allocator.js';
import type { ThreadLoop } from '../run/thread-loop.js';
import type { InspectRun } from '../run/workload.js';
import { WORKLOAD_LIST } from '../workloads/index.js';
import { type FragmentationFigures, fragmentationFigures } from './fragmentation.js';
import { RecordingAllocator } from './recording-allocator.js';

/** Iterations of a thread loop's run, when `--iterations` is not given. */
export const DEFAULT_MAP_ITERATIONS = 50_000;

/** What a map's run runs: a workload's `InspectRun`, or its thread loop's one-thread share. */
export type MapTarget = InspectRun;

/** A thread loop's one-thread share; `leaveLive` skips its final clean-up. */
function loopTarget(name: string, loop: ThreadLoop, leaveLive: boolean): MapTarget {
  return {
    name,
    summary: 'its one-thread loop (--iterations iterations)',
    run(heap, iterations) {
      const limits: LoopLimits = {
        stop: new Int32Array(new SharedArrayBuffer(RUN_CONTROL_BYTES)),
        deadline: Infinity,
        maxIterations: iterations ?? DEFAULT_MAP_ITERATIONS,
      };
      const runState = loop.runState?.(1) ?? null;
      loop.run(heap, loopMemory(heap.buffer), loop.sharedInput(), limits, { threadIndex: 0, threads: 1, verify: false, runState, leaveLive });
    },
  };
}

/**
 * Every target a map can run, in the workload list's order: a workload's own `inspectRuns`
 * where it has them, else its thread loop. A map's loops leave their blocks live (the heap
 * at 100 % is as the workload left it); `heaplab trace record` passes `leaveLive: false`,
 * so a recorded loop ends with its clean-up and its trace with every block freed.
 */
export function mapTargets(options: { leaveLive?: boolean } = {}): MapTarget[] {
  const leaveLive = options.leaveLive ?? true;
  return WORKLOAD_LIST.flatMap((workload): MapTarget[] => {
    if (workload.inspectRuns !== undefined) return [...workload.inspectRuns];
    return workload.threadLoop !== undefined ? [loopTarget(workload.name, workload.threadLoop, leaveLive)] : [];
  });
}

/**
 * The target called `name`.
 * @throws Error listing what can be mapped, for a workload without a loop to run (robson,
 *   heap-efficiency) or an unknown name
 */
export function findMapTarget(name: string): MapTarget {
  const targets = mapTargets();
  const found = targets.find((target) => target.name === name);
  if (found !== undefined) return found;
  const known = WORKLOAD_LIST.some((workload) => workload.name === name);
  const why = known ? `'${name}' has no loop a map can run one call at a time` : `no workload '${name}'`;
  throw new Error(`${why}; map and stats run one of: ${targets.map((target) => target.name).join(', ')}`);
}

/** A moment of the run, as `--at` names it. */
export interface MomentSpec {
  /** As shown: `50%`. */
  label: string;
  /** In (0, 1]. */
  fraction: number;
}

/** The heap at one moment. */
export interface HeapMoment {
  at: MomentSpec;
  /** The walk, each live region given the size the workload asked for. */
  regions: HeapRegion[];
  figures: FragmentationFigures;
  /** The backend's `classStats()` at this moment. */
  tables: StatsTable[];
}

/** Why a backend cannot be mapped: it has no walk. */
export class NoWalkError extends Error {}

/** How a run is made. */
export interface MomentRunSettings {
  /** Undefined: the target's own heap, else `DEFAULT_MAP_HEAP_BYTES`. */
  heapBytes: number | undefined;
  /** Undefined: the target's default. */
  iterations: number | undefined;
}

/** The heap of a run when neither the target nor `--heap-mib` says. */
export const DEFAULT_MAP_HEAP_BYTES = 64 << 20;

/** The heap bytes of a run of `target`. */
export function heapBytesOf(target: MapTarget, settings: MomentRunSettings): number {
  return settings.heapBytes ?? target.heapBytes ?? DEFAULT_MAP_HEAP_BYTES;
}

/** A fresh heap for one run; the caller detaches it. */
function freshHeap(contender: BackendContender, heapBytes: number): GlobalAllocator {
  const heap = createBackendHeap(contender.spec, heapBytes);
  if (!heap.supportsWalk()) {
    heap.detach();
    throw new NoWalkError(`backend '${contender.label}' has no walk(): its heap cannot be mapped or inspected`);
  }
  return heap;
}

/**
 * Runs `target` on `contender` twice (counting, then taking) and returns the heap at each of
 * `moments`, in the order given.
 * @throws NoWalkError when the backend has no walk; Error when the run fails or makes a
 *   different number of calls the second time; AllocError from the heap
 */
export function takeMoments(contender: BackendContender, target: MapTarget, moments: readonly MomentSpec[], settings: MomentRunSettings): HeapMoment[] {
  const heapBytes = heapBytesOf(target, settings);
  const counting = freshHeap(contender, heapBytes);
  let totalCalls: number;
  try {
    const counter = new RecordingAllocator(counting);
    target.run(counter, settings.iterations);
    totalCalls = counter.calls;
  } finally {
    counting.detach();
  }
  if (totalCalls === 0) throw new Error(`${target.name} made no allocator call`);
  // Each moment is the state after this many calls; at least one, so "1%" of a short run is not the empty heap.
  const callsOf = (moment: MomentSpec): number => Math.max(1, Math.round(moment.fraction * totalCalls));
  const wanted = new Map<number, MomentSpec[]>();
  for (const moment of moments) wanted.set(callsOf(moment), [...(wanted.get(callsOf(moment)) ?? []), moment]);
  const taken = new Map<MomentSpec, HeapMoment>();
  const heap = freshHeap(contender, heapBytes);
  try {
    const recorder: RecordingAllocator = new RecordingAllocator(heap, (calls) => {
      const due = wanted.get(calls);
      if (due === undefined) return;
      const snapshot = snapshotOf(heap, recorder);
      for (const moment of due) taken.set(moment, { at: moment, ...snapshot });
    });
    target.run(recorder, settings.iterations);
    if (recorder.calls !== totalCalls) {
      throw new Error(`${target.name} on ${contender.label} made ${totalCalls} allocator calls, then ${recorder.calls}: the run is not deterministic`);
    }
  } finally {
    heap.detach();
  }
  return moments.map((moment) => taken.get(moment)!);
}

/** The walk, figures and tables of `heap` now; each live region gets its requested size. */
function snapshotOf(heap: GlobalAllocator, recorder: RecordingAllocator): Omit<HeapMoment, 'at'> {
  const regions = heap.walk();
  for (const region of regions) {
    if (region.kind !== 'live' || region.requested !== undefined) continue;
    const requested = recorder.requested.get(region.address);
    if (requested !== undefined) region.requested = requested;
  }
  const figures = fragmentationFigures(regions, heap.stats(), recorder.requestedBytes, recorder.calls);
  return { regions, figures, tables: heap.classStats() };
}

/** A moment's `--at` form: `25%`, `12.5%` or a fraction `0.25`, in (0, 1]. */
export function parseMoment(text: string): MomentSpec {
  const part = text.trim();
  const percent = part.endsWith('%');
  const value = Number(percent ? part.slice(0, -1) : part);
  const fraction = percent ? value / 100 : value;
  if (part === '' || part === '%' || !Number.isFinite(value) || !(fraction > 0 && fraction <= 1)) {
    throw new Error(`'${text}' is no moment: give a percentage above 0 up to 100% (25%) or a fraction above 0 up to 1 (0.25)`);
  }
  return { label: `${Number((fraction * 100).toPrecision(6))}%`, fraction };
}
