/**
 * heaplab's own trace set (packages/bench/traces/, docs/traces.md): what each trace is, what
 * it stresses, and how it is made: by a seeded generator (the same bytes every time) or by
 * recording a workload on tlsf (`recordWorkload`). All of it is made by code in this
 * repository; none is copied from CS:APP's traces, which may not be redistributed. Each is
 * small (under 20 000 requests and 16 MiB of peak payload) so that a test can replay the
 * whole set on every backend in seconds.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { AllocError, formatTrace, type Trace, type TraceScan, traceFigures } from '@heaplab/core';

import { discoverBackends, resolveBackendContenders } from '../contenders/backends.js';
import { benchPackageRoot } from '../report/provenance.js';
import { binaryTree } from './generators/binary-tree.js';
import { callocAligned } from './generators/calloc-aligned.js';
import { fragmentation } from './generators/fragmentation.js';
import { producerConsumer } from './generators/producer-consumer.js';
import { randomMix, SMALL_MIX, WIDE_MIX } from './generators/random-mix.js';
import { reallocGrowth } from './generators/realloc-growth.js';
import { shortTrace } from './generators/short.js';
import { type RecordSettings, recordWorkload } from './record-workload.js';
// By its object, not a string: the workload list and each workload's folder alone name workloads.
import { glibcThreadWorkload } from '../workloads/glibc-thread/workload.js';

/** One trace of the set. */
export interface TraceSetEntry {
  /** File name in the set's directory; `.rep` for the text spelling, `.jsonl` for JSON lines. */
  file: string;
  /** What it stresses: its description line, and its line in docs/traces.md. */
  stresses: string;
  /** How it is made: a generator's seeded run, or a recording. */
  origin: 'generator' | 'recording';
  /** Whether making it again gives the same trace (false for a recording on several threads). */
  deterministic: boolean;
  make(): Promise<TraceScan>;
}

/** The backend the set's recordings run on. */
export const RECORDING_BACKEND = 'tlsf';

function generated(file: string, stresses: string, make: (description: string) => Trace): TraceSetEntry {
  return {
    file,
    stresses,
    origin: 'generator',
    deterministic: true,
    make: async () => ({ trace: make(stresses), unpublished: 0, unknownAddresses: 0 }),
  };
}

function recorded(file: string, stresses: string, settings: Omit<RecordSettings, 'description' | 'heapBytes' | 'capacity'>): TraceSetEntry {
  return {
    file,
    stresses,
    origin: 'recording',
    deterministic: settings.threads === 1,
    async make() {
      await discoverBackends();
      const [contender] = resolveBackendContenders([{ name: RECORDING_BACKEND, options: {} }]);
      return recordWorkload(contender!, { ...settings, heapBytes: undefined, capacity: 1 << 16, description: stresses });
    },
  };
}

/** The set, in the order docs/traces.md lists it. */
export const TRACE_SET: readonly TraceSetEntry[] = [
  generated('short.rep', 'short: twelve requests, each operation once or twice, for debugging by hand', shortTrace),
  generated('random-mix-small.rep', 'random mix of small blocks (8-512 B, few reallocs): size classes and free-list reuse', (text) =>
    randomMix(SMALL_MIX, 1, text),
  ),
  generated('random-mix-wide.rep', 'random mix from 1 B to 64 KiB, a quarter reallocs: small and large paths in turn', (text) => randomMix(WIDE_MIX, 2, text)),
  generated('realloc-growth.rep', 'four buffers grown by half again up to 1 MiB between small blocks: realloc in place or by moving', (text) =>
    reallocGrowth(3, text),
  ),
  generated('binary-tree.rep', 'binary trees built depth-first and torn down in post-order: one hot node size, LIFO frees', (text) => binaryTree(4, text)),
  generated('fragmentation.rep', 'alternate small and large, free the large, ask for larger: holes too small to reuse', fragmentation),
  generated('producer-consumer.jsonl', 'thread 0 allocates messages that thread 1 frees: remote frees across two threads', (text) => producerConsumer(5, text)),
  generated('calloc-aligned.jsonl', 'callocs and alignments from 16 B to 4 KiB among plain blocks: zeroing and the aligned path', (text) =>
    callocAligned(6, text),
  ),
  recorded('arceos-vec2-64.rep', "recorded: ArceOS's test_vec_2(30000, 64), its first 3000 steps: many equal blocks freed in random order", {
    workload: 'arceos:vec2-64',
    threads: 1,
    iterations: 3000,
  }),
  recorded('arceos-btree-map.rep', "recorded: ArceOS's test_btree_map, its first 2000 steps: a B-tree's nodes and keys", {
    workload: 'arceos:btree_map',
    threads: 1,
    iterations: 2000,
  }),
  recorded('arceos-align.jsonl', "recorded: ArceOS's align_test: blocks at alignments up to the page", {
    workload: 'arceos:align',
    threads: 1,
    iterations: 2000,
  }),
  recorded('glibc-thread-1.rep', "recorded: glibc's bench-malloc-thread loop on one thread, 3000 iterations: a ring of random-size blocks", {
    workload: glibcThreadWorkload.name,
    threads: 1,
    iterations: 3000,
  }),
  recorded('glibc-thread-2.jsonl', "recorded: glibc's bench-malloc-thread loop on two workers, 2000 iterations each: two threads' calls interleaved", {
    workload: glibcThreadWorkload.name,
    threads: 2,
    iterations: 2000,
  }),
];

/** A trace's file text: the spelling its extension names. */
export function traceFileText(file: string, trace: Trace): string {
  return formatTrace(trace, file.endsWith('.jsonl') ? 'jsonl' : 'text');
}

/** A trace `makeTraceSet` wrote, and its figures (`heaplab trace make` prints them as a table). */
export interface MadeTrace {
  file: string;
  requests: number;
  ids: number;
  threads: number;
  peakPayloadBytes: number;
}

/**
 * Makes the set's traces (those named in `only`, or all) into `directory`; returns each
 * one's figures.
 * @throws AllocError when a recording fails or its log fills; Error for a name not in the set
 */
export async function makeTraceSet(directory: string, only?: readonly string[]): Promise<MadeTrace[]> {
  const unknown = (only ?? []).filter((file) => !TRACE_SET.some((entry) => entry.file === file));
  if (unknown.length > 0) throw new Error(`not in the trace set: ${unknown.join(', ')}; the set: ${TRACE_SET.map((entry) => entry.file).join(', ')}`);
  mkdirSync(directory, { recursive: true });
  const made: MadeTrace[] = [];
  for (const entry of TRACE_SET) {
    if (only !== undefined && !only.includes(entry.file)) continue;
    const { trace } = await entry.make();
    writeFileSync(join(directory, entry.file), traceFileText(entry.file, trace));
    const figures = traceFigures(trace);
    made.push({ file: entry.file, requests: figures.requests, ids: trace.ids, threads: trace.threads, peakPayloadBytes: figures.peakPayloadBytes });
  }
  return made;
}

/**
 * The folder the trace set ships in (packages/bench/traces, or `traces/` of the installed
 * bench package).
 * @throws AllocError `InvalidParam` when the bench package's folder cannot be found
 */
export function shippedTracesDir(): string {
  const root = benchPackageRoot();
  if (root === null) throw new AllocError('InvalidParam', "cannot find the @heaplab/bench package's folder, where its traces/ are; pass --traces");
  return join(root, 'traces');
}
