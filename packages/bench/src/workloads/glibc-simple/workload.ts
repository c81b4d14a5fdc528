/**
 * glibc-simple: glibc's bench-malloc-simple as mimalloc-bench runs it
 * (docs/workloads/glibc-simple.md): one thread, n blocks of one size allocated and filled,
 * then freed half FIFO and half LIFO, over n in 25..1600 and sizes 16, 32, 64.
 */

import { throughputChart } from '../../report/throughput-chart.js';
import { sampledPeakNotes, throughputTable } from '../../report/throughput-columns.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { runThroughputRows, throughputSteps, type ThroughputRow } from '../../run/throughput-rows.js';
import type { Workload } from '../../run/workload.js';
import { CASE_BLOCKS, runSimpleLoop, runSystemSimpleLoop, SIMPLE_BLOCK_COUNTS, SIMPLE_SIZES } from './loop.js';
import { runNativeGlibcSimple } from './native.js';

/** The original is one thread; its rows are one-thread rows whatever `--threads` says. */
const SIMPLE_THREADS: readonly number[] = [1];

/** The thread's loop, and its copy for the `system` baseline. */
export const glibcSimpleLoop: ThreadLoop = {
  workload: 'glibc-simple',
  sharedInput: () => null,
  run: (allocator, memory, _input, limits, thread) => runSimpleLoop(allocator, memory, limits, thread.verify),
  runSystem: (_input, limits, thread) => runSystemSimpleLoop(limits, thread.verify),
};

export const glibcSimpleWorkload: Workload<ThroughputRow, 'glibcSimple'> = {
  name: 'glibc-simple',
  resultKey: 'glibcSimple',
  summary: `glibc bench-malloc-simple (mimalloc-bench glibc-simple): one thread, blocks/s of ${SIMPLE_BLOCK_COUNTS.join('/')} blocks of ${SIMPLE_SIZES.join('/')} bytes, freed half FIFO half LIFO`,
  // Not `bump`: it would only show the loop and the fill, and is not asked for here.
  appliesTo: (contender) => contender.kind !== 'bump',
  stepsPerContender: (settings) => throughputSteps(settings, SIMPLE_THREADS.length),
  threadLoop: glibcSimpleLoop,

  run(contenders, settings, progress) {
    return runThroughputRows(glibcSimpleLoop, contenders, { ...settings, threads: SIMPLE_THREADS }, progress, {
      native: (contender, _threads, durationSeconds) => runNativeGlibcSimple(contender, durationSeconds, settings.fill),
    });
  },

  section(rows, run) {
    return {
      title: `glibc-simple (bench-malloc-simple, one thread: ${SIMPLE_BLOCK_COUNTS.join('/')} blocks of ${SIMPLE_SIZES.join('/')} bytes, ${CASE_BLOCKS} blocks per case; a block is one malloc and one free)`,
      table: throughputTable('blocks/s', rows, run.width),
      notes: sampledPeakNotes(rows),
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    return [
      throughputChart({
        id: 'glibc-simple',
        title: 'glibc-simple: blocks per second',
        caption: `One thread allocates and fills ${SIMPLE_BLOCK_COUNTS.join(', ')} blocks of ${SIMPLE_SIZES.join(', ')} bytes, then frees them half in order, half in reverse. A block is one malloc and one free. Higher is better.`,
        rows,
        unit: 'blocks',
      }),
    ];
  },
};
