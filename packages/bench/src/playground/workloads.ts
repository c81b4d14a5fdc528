/**
 * The playground's workloads: small seeded generators shaped like the repository's
 * workloads, each making a trace (the same model `heaplab replay` reads), so a workload and a
 * trace file play through the same code. Thread 0 of a trace runs on the page; every other
 * thread on a web worker attached to the same heap, so a request of thread 1 that frees a
 * block of thread 0 is a real remote free.
 */

import type { Trace } from '@heaplab/core';

import { binaryTree } from '../traces/generators/binary-tree.js';
import { producerConsumer } from '../traces/generators/producer-consumer.js';
import { randomMix, SMALL_MIX } from '../traces/generators/random-mix.js';
import { TraceBuilder } from '../traces/trace-builder.js';
import { buildRequestTables, NUM_BLOCK_SIZES, NUM_OFFSETS } from '../workloads/glibc-thread/request-tables.js';

/** One entry of the workload picker. */
export interface PlaygroundWorkload {
  name: string;
  /** What the picker's tooltip and the page's caption say. */
  summary: string;
  make(): Trace;
}

/** Slots per thread of the glibc-thread-like workload (glibc's benchmark has 1024). */
const GLIBC_SLOTS = 256;
/** Its loop iterations per thread. */
const GLIBC_ITERATIONS = 2000;
/** Requests a thread makes before the other takes its turn: threads interleave as they would running at once. */
const GLIBC_TURN = 16;

/**
 * glibc's bench-malloc-thread loop on two threads: each frees the block in a slot picked from
 * glibc's offset table and allocates one of glibc's table sizes (4 B to 32 KiB, mostly
 * small) in its place; each thread touches only its own slots, as in the benchmark.
 */
function glibcThreadLike(): Trace {
  const tables = buildRequestTables();
  const builder = new TraceBuilder();
  const slots = [new Array<number>(GLIBC_SLOTS).fill(-1), new Array<number>(GLIBC_SLOTS).fill(-1)];
  const step = (thread: number, iteration: number): void => {
    // The second thread starts half-way through the tables, so the two ask for different sizes.
    const at = iteration + thread * (NUM_OFFSETS >>> 1);
    const slot = tables.offsets[at % NUM_OFFSETS]! % GLIBC_SLOTS;
    const own = slots[thread]!;
    if (own[slot]! >= 0) builder.free(own[slot]!, thread);
    own[slot] = builder.alloc(tables.sizes[at % NUM_BLOCK_SIZES]!, { thread });
  };
  for (let start = 0; start < GLIBC_ITERATIONS; start += GLIBC_TURN) {
    for (let thread = 0; thread < 2; thread++) {
      for (let iteration = start; iteration < Math.min(start + GLIBC_TURN, GLIBC_ITERATIONS); iteration++) step(thread, iteration);
    }
  }
  slots.forEach((own, thread) => {
    for (const id of own) if (id >= 0) builder.free(id, thread);
  });
  return builder.build("glibc's bench-malloc-thread loop on two threads: random sizes from 4 B to 32 KiB in 256 slots each");
}

/** Every workload, in the picker's order. */
export const PLAYGROUND_WORKLOADS: readonly PlaygroundWorkload[] = [
  {
    name: 'producer-consumer',
    summary: 'thread 0 (the page) allocates messages that thread 1 (a worker) frees: remote frees',
    make: () => producerConsumer(1, 'thread 0 allocates messages that thread 1 frees: remote frees across two threads'),
  },
  { name: 'glibc-thread-like', summary: "glibc's bench-malloc-thread loop on two threads (the page and a worker)", make: glibcThreadLike },
  {
    name: 'binary-tree',
    summary: 'trees of small nodes built and torn down depth-first (one thread)',
    make: () => binaryTree(1, 'binary trees of small nodes built and freed depth-first'),
  },
  {
    name: 'random-mix',
    summary: 'random mallocs, reallocs and frees of 8 to 512 bytes (one thread)',
    make: () => randomMix(SMALL_MIX, 1, 'random mallocs, reallocs and frees of 8 to 512 bytes'),
  },
];

/** The workload named `name`. @throws Error for a name the picker does not offer */
export function workloadOf(name: string): PlaygroundWorkload {
  const workload = PLAYGROUND_WORKLOADS.find((candidate) => candidate.name === name);
  if (workload === undefined) throw new Error(`no playground workload '${name}'`);
  return workload;
}
