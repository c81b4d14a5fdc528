/**
 * larson's `native` rows: native/larson.c, heaplab's C port, run against a C allocator
 * (run/native-program.ts builds and runs it). Without a compiler or the allocator's library
 * the row says so and the bench goes on.
 */

import type { NativeContender } from '../../contenders/contender.js';
import { runNativeProgram } from '../../run/native-program.js';
import type { ThroughputRow } from '../../run/throughput-rows.js';
import { LARSON_PARAMETERS, type LarsonParameters } from './loop.js';

/** The port's file name under native/, without `.c`. */
export const LARSON_PROGRAM = 'larson';

/** Seconds past its duration after which a port run is killed. */
const NATIVE_GRACE_SECONDS = 30;

/**
 * The port's arguments: threads and seconds, then the original's size range, chunks per
 * thread, rounds and seed.
 */
export function larsonArguments(threads: number, durationSeconds: number, parameters: LarsonParameters = LARSON_PARAMETERS): string[] {
  const { minSize, maxSize, chunksPerThread, rounds, seed } = parameters;
  return [threads, durationSeconds, minSize, maxSize, chunksPerThread, rounds, seed].map(String);
}

/** Runs the native port; a missing compiler, a missing library or a failure becomes a row with `error`. */
export async function runNativeLarson(
  contender: NativeContender,
  threads: number,
  durationSeconds: number,
  parameters: LarsonParameters = LARSON_PARAMETERS,
): Promise<ThroughputRow> {
  const base = { label: contender.label, kind: contender.kind, threads, peakUsedBytes: null, peakFootprintBytes: null };
  try {
    const run = await runNativeProgram(LARSON_PROGRAM, larsonArguments(threads, durationSeconds, parameters), {
      allocator: contender.allocator,
      timeoutSeconds: durationSeconds + NATIVE_GRACE_SECONDS,
    });
    const { ops } = parseLarsonOutput(run.lines);
    return {
      ...base,
      iterations: ops,
      wallSeconds: run.wallSeconds,
      cpuSeconds: run.cpuSeconds,
      maxRssKiB: run.maxRssKiB,
      perSecond: ops / run.wallSeconds,
      note: `the C port against ${contender.allocator === 'glibc' ? "the C library's malloc" : `${contender.allocator} (LD_PRELOAD)`}`,
    };
  } catch (error) {
    return { ...base, iterations: 0, wallSeconds: 0, perSecond: 0, error: `the native benchmark failed: ${(error as Error).message}` };
  }
}

/**
 * Reads the port's own lines (the trailer already taken off): the original's throughput
 * line, then `N operations, G generations`.
 * @throws Error when the output does not have them
 */
export function parseLarsonOutput(lines: readonly string[]): { ops: number; generations: number; throughputLine: string } {
  const counts = /^(\d+) operations, (\d+) generations$/.exec(lines[1] ?? '');
  if (lines.length !== 2 || !/^Throughput = /.test(lines[0]!) || counts === null) {
    throw new Error(`unexpected output from the native benchmark: ${lines.join('\n').slice(0, 200)}`);
  }
  return { ops: Number(counts[1]), generations: Number(counts[2]), throughputLine: lines[0]! };
}
