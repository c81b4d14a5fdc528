/**
 * glibc-thread's `native` rows: native/bench-malloc-thread.c, heaplab's C port of the same
 * benchmark, run against a C allocator (run/native-program.ts builds and runs it). Without
 * a compiler or the allocator's library the row says so and the bench goes on.
 */

import type { NativeContender } from '../../contenders/contender.js';
import { runNativeProgram } from '../../run/native-program.js';
import type { GlibcThreadRow, GlibcUpstreamJson } from './row.js';

/** The port's file name under native/, without `.c`. */
export const GLIBC_THREAD_PROGRAM = 'bench-malloc-thread';

/** Seconds past its duration after which a port run is killed. */
const NATIVE_GRACE_SECONDS = 30;

/** Runs the native port; a missing compiler, a missing library or a failure becomes a row with `error`. */
export async function runNativeGlibcThread(
  contender: NativeContender,
  threads: number,
  durationSeconds: number,
  fill: 'memset' | 'bytes' = 'memset',
): Promise<GlibcThreadRow> {
  const base = { label: contender.label, kind: contender.kind, threads, peakUsedBytes: null, peakFootprintBytes: null };
  try {
    const run = await runNativeProgram(GLIBC_THREAD_PROGRAM, [String(threads), String(durationSeconds)], {
      allocator: contender.allocator,
      timeoutSeconds: durationSeconds + NATIVE_GRACE_SECONDS,
      fill,
    });
    const parsed = parseNativeOutput(run.lines);
    return {
      ...base,
      iterations: parsed.iterations,
      wallSeconds: run.wallSeconds,
      cpuSeconds: run.cpuSeconds,
      maxRssKiB: run.maxRssKiB,
      perSecond: parsed.iterations / run.wallSeconds,
      note: `the C port against ${contender.allocator === 'glibc' ? "the C library's malloc" : `${contender.allocator} (LD_PRELOAD)`}`,
      mimallocBenchLine: `${parsed.iterations} iterations`,
      upstream: parsed.upstream,
    };
  } catch (error) {
    return { ...base, iterations: 0, wallSeconds: 0, perSecond: 0, error: `the native benchmark failed: ${(error as Error).message}` };
  }
}

/**
 * Reads the port's own two lines (the trailer already taken off): the upstream JSON line
 * and "N iterations".
 * @throws Error when the output does not have them
 */
export function parseNativeOutput(lines: readonly string[]): { upstream: GlibcUpstreamJson; iterations: number } {
  const iterationsMatch = /^(\d+) iterations$/.exec(lines[1] ?? '');
  if (lines.length !== 2 || iterationsMatch === null) {
    throw new Error(`unexpected output from the native benchmark: ${lines.join('\n').slice(0, 200)}`);
  }
  return { upstream: JSON.parse(lines[0]!) as GlibcUpstreamJson, iterations: Number(iterationsMatch[1]) };
}
