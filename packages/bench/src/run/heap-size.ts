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
 * One line for each heaplab backend among `contenders` whose heap is too small on the
 * largest thread count of a workload it runs in: the workload's heap (`heapBytesFor`, else
 * `settings.heapBytes`) against the backend's minimum for that many threads and the
 * workload's largest block (0 when it declares none: the minimum a backend needs at all, 4
 * MiB an arena, or mimalloc's segments per thread).
 */
export function heapTooSmall(workloads: readonly Workload[], contenders: readonly Contender[], settings: BenchSettings): string[] {
  const threads = Math.max(...settings.threads);
  const lines: string[] = [];
  for (const workload of workloads) {
    const heapBytes = workload.heapBytesFor?.(settings, threads) ?? settings.heapBytes;
    const largestBlock = workload.largestBlock ?? 0;
    for (const contender of contenders) {
      if (contender.kind !== 'heaplab' || !workload.appliesTo(contender)) continue;
      const need = minimumHeapBytes(findBackend(contender.spec.name), { threads, largestBlock }, contender.spec.options);
      if (heapBytes >= need) continue;
      lines.push(
        `${contender.label} needs a heap of at least ${need / MiB} MiB for ${workload.name} on ${threads} thread${threads === 1 ? '' : 's'}` +
          `${largestBlock === 0 ? '' : ` (blocks up to ${largestBlock} bytes)`}; --heap-mib is ${settings.heapBytes / MiB}`,
      );
    }
  }
  return lines;
}
