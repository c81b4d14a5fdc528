/**
 * `heaplab bench` refuses a heap smaller than a backend needs for a workload's threads
 * (run/heap-size.ts), for every workload at the heap it runs in, and only for the
 * backends that need more than the smallest heap.
 */

import { describe, expect, it } from 'vitest';

import '@heaplab/mimalloc';
import '@heaplab/tlsf';

import type { Contender } from '../src/contenders/contender.js';
import { heapTooSmall } from '../src/run/heap-size.js';
import type { BenchSettings } from '../src/run/workload.js';
import { allocPairsWorkload } from '../src/workloads/alloc-pairs/workload.js';
import { glibcThreadWorkload } from '../src/workloads/glibc-thread/workload.js';
import { larsonWorkload } from '../src/workloads/larson/workload.js';
import { robsonWorkload } from '../src/workloads/robson/workload.js';

const MiB = 1024 * 1024;

const backend = (name: string): Contender => ({ kind: 'heaplab', label: name, spec: { name, options: {} } });
const settingsOf = (heapMiB: number, threads: number[]): BenchSettings => ({
  threads,
  durationSeconds: 0.1,
  repeat: 1,
  warmup: false,
  fill: 'memset',
  verify: false,
  heapBytes: heapMiB * MiB,
  isolate: false,
  seed: 1,
  inAll: false,
});

describe('a heap too small for a row', () => {
  it('is found for mimalloc on the largest thread count, with what it needs', () => {
    const lines = heapTooSmall([glibcThreadWorkload, larsonWorkload], [backend('mimalloc'), backend('tlsf')], settingsOf(12, [1, 2]));
    expect(lines).toEqual(['mimalloc needs a heap of at least 16 MiB for glibc-thread on 2 threads (blocks up to 32768 bytes); --heap-mib is 12']);
  });

  it('is not found at the need, nor for backends that share one arena, nor in workloads that size their own heaps', () => {
    expect(heapTooSmall([glibcThreadWorkload, larsonWorkload], [backend('mimalloc')], settingsOf(16, [1, 2]))).toEqual([]);
    expect(heapTooSmall([glibcThreadWorkload], [backend('tlsf')], settingsOf(4, [8]))).toEqual([]);
    expect(heapTooSmall([robsonWorkload], [backend('mimalloc')], settingsOf(4, [8]))).toEqual([]);
  });

  it('is found in a workload that declares no largest block, from what a backend needs at all', () => {
    const arenas: Contender = { kind: 'heaplab', label: 'tlsf:arenas=3', spec: { name: 'tlsf', options: { tcache: true, arenas: 3 } } };
    expect(heapTooSmall([allocPairsWorkload], [backend('mimalloc'), arenas, backend('tlsf')], settingsOf(4, [2]))).toEqual([
      'mimalloc needs a heap of at least 8 MiB for alloc-pairs on 2 threads; --heap-mib is 4',
      'tlsf:arenas=3 needs a heap of at least 12 MiB for alloc-pairs on 2 threads; --heap-mib is 4',
    ]);
  });

  it('asks 4 MiB for each arena of a locked backend with the arenas option', () => {
    const arenas = (count: number): Contender => ({
      kind: 'heaplab',
      label: `tlsf:arenas=${count}`,
      spec: { name: 'tlsf', options: { tcache: true, arenas: count } },
    });
    expect(heapTooSmall([glibcThreadWorkload], [arenas(3), arenas(2), arenas(1)], settingsOf(8, [1, 2]))).toEqual([
      'tlsf:arenas=3 needs a heap of at least 12 MiB for glibc-thread on 2 threads (blocks up to 32768 bytes); --heap-mib is 8',
    ]);
  });

  it('counts threads and block sizes: larson (blocks under 1000 bytes) needs one segment per thread', () => {
    expect(heapTooSmall([larsonWorkload], [backend('mimalloc')], settingsOf(8, [3]))).toEqual([
      'mimalloc needs a heap of at least 12 MiB for larson on 3 threads (blocks up to 999 bytes); --heap-mib is 8',
    ]);
  });
});
