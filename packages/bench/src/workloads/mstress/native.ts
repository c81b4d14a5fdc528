/**
 * mstress's `native` rows: native/mstress.c, heaplab's C port of the same loop, run against
 * a C allocator (run/native-program.ts builds and runs it). Without a compiler or the
 * allocator's library the row says so and the bench goes on.
 */

import type { NativeContender } from '../../contenders/contender.js';
import { runNativeProgram } from '../../run/native-program.js';
import type { ThroughputRow } from '../../run/throughput-rows.js';
import { MSTRESS_SCALE } from './loop.js';

/** The port's file name under native/, without `.c`. */
export const MSTRESS_PROGRAM = 'mstress';

/** Seconds past its duration after which a port run is killed. */
const NATIVE_GRACE_SECONDS = 30;

/** What the port prints before its trailer. */
export interface MstressNativeOutput {
  /** Steps (one allocation each), all threads. */
  allocations: number;
  /** Each thread's steps over its own time in its rounds, summed. */
  perSecond: number;
  /** Blocks the last thread found in the transfer array. */
  drained: number;
}

/** Runs the native port; a missing compiler, a missing library or a failure becomes a row with `error`. */
export async function runNativeMstress(contender: NativeContender, threads: number, durationSeconds: number, scale = MSTRESS_SCALE): Promise<ThroughputRow> {
  const base = { label: contender.label, kind: contender.kind, threads, peakUsedBytes: null, peakFootprintBytes: null };
  try {
    const run = await runNativeProgram(MSTRESS_PROGRAM, [String(threads), String(durationSeconds), String(scale)], {
      allocator: contender.allocator,
      timeoutSeconds: durationSeconds + NATIVE_GRACE_SECONDS,
    });
    const parsed = parseMstressOutput(run.lines);
    return {
      ...base,
      iterations: parsed.allocations,
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
 * Reads the port's three lines (the trailer already taken off).
 * @throws Error when the output does not have them
 */
export function parseMstressOutput(lines: readonly string[]): MstressNativeOutput {
  const allocations = /^(\d+) allocations$/.exec(lines[0] ?? '');
  const rate = /^(\d+) allocations\/s$/.exec(lines[1] ?? '');
  const drained = /^(\d+) drained$/.exec(lines[2] ?? '');
  if (lines.length !== 3 || allocations === null || rate === null || drained === null) {
    throw new Error(`unexpected output from the native mstress: ${lines.join('\n').slice(0, 200)}`);
  }
  return { allocations: Number(allocations[1]), perSecond: Number(rate[1]), drained: Number(drained[1]) };
}
