/**
 * glibc-simple's `native` rows: native/glibc-simple.c, heaplab's C port of the same sequence
 * of cases, run against a C allocator (see run/native-program.ts). Without a compiler or the
 * allocator's library the row says so.
 */

import type { NativeContender } from '../../contenders/contender.js';
import { runNativeProgram } from '../../run/native-program.js';
import type { ThroughputRow } from '../../run/throughput-rows.js';

/** The port's file name under native/, without `.c`. */
export const GLIBC_SIMPLE_PROGRAM = 'glibc-simple';

/** Seconds past its duration after which a port run is killed. */
const NATIVE_GRACE_SECONDS = 30;

/** Runs the native port (one thread); a missing compiler, a missing library or a failure becomes a row with `error`. */
export async function runNativeGlibcSimple(contender: NativeContender, durationSeconds: number, fill: 'memset' | 'bytes' = 'memset'): Promise<ThroughputRow> {
  const base = { label: contender.label, kind: contender.kind, threads: 1, peakUsedBytes: null, peakFootprintBytes: null };
  try {
    const run = await runNativeProgram(GLIBC_SIMPLE_PROGRAM, ['1', String(durationSeconds)], {
      allocator: contender.allocator,
      timeoutSeconds: durationSeconds + NATIVE_GRACE_SECONDS,
      fill,
    });
    const blocks = parseBlocks(run.lines);
    return {
      ...base,
      iterations: blocks,
      wallSeconds: run.wallSeconds,
      cpuSeconds: run.cpuSeconds,
      maxRssKiB: run.maxRssKiB,
      perSecond: blocks / run.wallSeconds,
      note: `the C port against ${contender.allocator === 'glibc' ? "the C library's malloc" : `${contender.allocator} (LD_PRELOAD)`}`,
    };
  } catch (error) {
    return { ...base, iterations: 0, wallSeconds: 0, perSecond: 0, error: `the native benchmark failed: ${(error as Error).message}` };
  }
}

/**
 * The port's own line (the trailer already taken off): "N blocks".
 * @throws Error when the output is not that one line
 */
export function parseBlocks(lines: readonly string[]): number {
  const match = /^(\d+) blocks$/.exec(lines[0] ?? '');
  if (lines.length !== 1 || match === null) throw new Error(`unexpected output from the native benchmark: ${lines.join('\n').slice(0, 200)}`);
  return Number(match[1]);
}
