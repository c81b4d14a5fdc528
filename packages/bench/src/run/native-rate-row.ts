/**
 * The `native` row of a workload whose C port reports its own rate: the port prints
 * `N <unit>` (all threads' count) and `R <unit> per second` (each thread's count over its own
 * time in the loop, summed, as `ThreadedRun.perSecond` is for the TypeScript rows, so that a
 * port's set-up before its timed loop is left out alike), then the trailer of
 * native/heaplab-native.h. A missing compiler or library, or a failure, becomes a row with
 * `error`.
 */

import type { NativeContender } from '../contenders/contender.js';
import { runNativeProgram } from './native-program.js';
import type { ThroughputRow } from './throughput-rows.js';

/** Seconds past its duration after which a port run is killed (its set-up and teardown are not timed). */
const NATIVE_GRACE_SECONDS = 30;

/** How one port is run and read. */
export interface NativeRateProgram {
  /** The port's file name under native/, without `.c`. */
  readonly program: string;
  /** What the port counts, as in its lines: `operations` for "N operations". */
  readonly unit: string;
  /** Its arguments for a run of `threads` threads lasting `durationSeconds`. */
  args(threads: number, durationSeconds: number): string[];
}

/** Runs the port once as a row. */
export async function runNativeRateRow(
  port: NativeRateProgram,
  contender: NativeContender,
  threads: number,
  durationSeconds: number,
  fill: 'memset' | 'bytes' = 'memset',
): Promise<ThroughputRow> {
  const base = { label: contender.label, kind: contender.kind, threads, peakUsedBytes: null, peakFootprintBytes: null };
  try {
    const run = await runNativeProgram(port.program, port.args(threads, durationSeconds), {
      allocator: contender.allocator,
      timeoutSeconds: durationSeconds + NATIVE_GRACE_SECONDS,
      fill,
    });
    const parsed = parseNativeRate(run.lines, port.unit);
    return {
      ...base,
      iterations: parsed.count,
      wallSeconds: run.wallSeconds,
      cpuSeconds: run.cpuSeconds,
      maxRssKiB: run.maxRssKiB,
      perSecond: parsed.perSecond,
      note: `the C port against ${contender.allocator === 'glibc' ? "the C library's malloc" : `${contender.allocator} (LD_PRELOAD)`}`,
    };
  } catch (error) {
    return { ...base, iterations: 0, wallSeconds: 0, perSecond: 0, error: `the native benchmark failed: ${(error as Error).message}` };
  }
}

/**
 * Reads a port's two lines (the trailer already taken off): `N <unit>` and `R <unit> per second`.
 * @throws Error when the output does not have them
 */
export function parseNativeRate(lines: readonly string[], unit: string): { count: number; perSecond: number } {
  const count = new RegExp(`^(\\d+) ${unit}$`).exec(lines[0] ?? '');
  const rate = new RegExp(`^(\\d+(?:\\.\\d+)?) ${unit} per second$`).exec(lines[1] ?? '');
  if (lines.length !== 2 || count === null || rate === null) {
    throw new Error(`unexpected output from the native benchmark: ${lines.join('\n').slice(0, 200)}`);
  }
  return { count: Number(count[1]), perSecond: Number(rate[1]) };
}
