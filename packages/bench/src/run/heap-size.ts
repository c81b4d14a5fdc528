/**
 * Refusing a heap too small for a row before the row runs. A backend whose threads own parts
 * of the arena (mimalloc: a 4 MiB segment per thread and page kind) needs a heap that grows
 * with the thread count; run in less, its threads would find the heap full after a few
 * hundred iterations, and the row would fail with nothing said of why.
 */

import { findBackend, minimumHeapBytes } from '@heaplab/core';

import type { Contender } from '../contenders/contender.js';
import type { BenchSettings, Workload } from './workload.js';

const MiB = 1024 * 1024;

/**
 * One line for each heaplab backend among `contenders` that `settings.heapBytes` is too
 * small for, on the largest thread count of a workload that declares its largest block.
 * Workloads that size their heaps themselves declare none and are not checked.
 */
export function heapTooSmall(workloads: readonly Workload[], contenders: readonly Contender[], settings: BenchSettings): string[] {
  const threads = Math.max(...settings.threads);
  const lines: string[] = [];
  for (const workload of workloads) {
    if (workload.largestBlock === undefined || workload.threadLoop === undefined) continue;
    for (const contender of contenders) {
      if (contender.kind !== 'heaplab') continue;
      const need = minimumHeapBytes(findBackend(contender.spec.name), { threads, largestBlock: workload.largestBlock }, contender.spec.options);
      if (settings.heapBytes >= need) continue;
      lines.push(
        `${contender.label} needs a heap of at least ${need / MiB} MiB for ${workload.name} on ${threads} thread${threads === 1 ? '' : 's'} ` +
          `(blocks up to ${workload.largestBlock} bytes); --heap-mib is ${settings.heapBytes / MiB}`,
      );
    }
  }
  return lines;
}
