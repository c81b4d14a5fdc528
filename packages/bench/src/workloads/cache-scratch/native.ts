/**
 * cache-scratch's `native` rows: native/cache-scratch.c, heaplab's C port of the same
 * hand-over and rounds, with the same object size and passes per round, run against a C
 * allocator (see run/native-program.ts). Without a compiler or the allocator's library the
 * row says so.
 */

import type { NativeContender } from '../../contenders/contender.js';
import { runNativeProgram } from '../../run/native-program.js';
import type { ThroughputRow } from '../../run/throughput-rows.js';
import { SCRATCH_OBJECT_SIZE, SCRATCH_REPETITIONS } from './loop.js';

/** The port's file name under native/, without `.c`. */
export const CACHE_SCRATCH_PROGRAM = 'cache-scratch';

/** Seconds past its duration after which a port run is killed. */
const NATIVE_GRACE_SECONDS = 30;

/** Runs the native port; a missing compiler, a missing library or a failure becomes a row with `error`. */
export async function runNativeCacheScratch(
  contender: NativeContender,
  threads: number,
  durationSeconds: number,
  fill: 'memset' | 'bytes' = 'memset',
): Promise<ThroughputRow> {
  const base = { label: contender.label, kind: contender.kind, threads, peakUsedBytes: null, peakFootprintBytes: null };
  try {
    const args = [threads, durationSeconds, SCRATCH_OBJECT_SIZE, SCRATCH_REPETITIONS].map(String);
    const run = await runNativeProgram(CACHE_SCRATCH_PROGRAM, args, {
      allocator: contender.allocator,
      timeoutSeconds: durationSeconds + NATIVE_GRACE_SECONDS,
      fill,
    });
    const rounds = parseRounds(run.lines);
    return {
      ...base,
      iterations: rounds,
      wallSeconds: run.wallSeconds,
      cpuSeconds: run.cpuSeconds,
      maxRssKiB: run.maxRssKiB,
      perSecond: rounds / run.wallSeconds,
      note: `the C port against ${contender.allocator === 'glibc' ? "the C library's malloc" : `${contender.allocator} (LD_PRELOAD)`}`,
    };
  } catch (error) {
    return { ...base, iterations: 0, wallSeconds: 0, perSecond: 0, error: `the native benchmark failed: ${(error as Error).message}` };
  }
}

/**
 * The port's own line (the trailer already taken off): "N rounds".
 * @throws Error when the output is not that one line
 */
export function parseRounds(lines: readonly string[]): number {
  const match = /^(\d+) rounds$/.exec(lines[0] ?? '');
  if (lines.length !== 1 || match === null) throw new Error(`unexpected output from the native benchmark: ${lines.join('\n').slice(0, 200)}`);
  return Number(match[1]);
}
