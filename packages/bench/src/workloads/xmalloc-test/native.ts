/**
 * xmalloc-test's `native` rows: native/xmalloc-test.c, heaplab's C port, run against a C
 * allocator (run/native-program.ts builds and runs it). Without a compiler or the
 * allocator's library the row says so and the bench goes on.
 */

import type { NativeContender } from '../../contenders/contender.js';
import { runNativeProgram } from '../../run/native-program.js';
import type { ThroughputRow } from '../../run/throughput-rows.js';
import { XMALLOC_PARAMETERS, type XmallocParameters } from './loop.js';

/** The port's file name under native/, without `.c`. */
export const XMALLOC_PROGRAM = 'xmalloc-test';

/** Seconds past its duration after which a port run is killed. */
const NATIVE_GRACE_SECONDS = 30;

/** The port's arguments: threads and seconds, then object size, objects per batch and the stack's limit. */
export function xmallocArguments(threads: number, durationSeconds: number, parameters: XmallocParameters = XMALLOC_PARAMETERS): string[] {
  const { objectSize, batchObjects, stackLimit } = parameters;
  return [threads, durationSeconds, objectSize, batchObjects, stackLimit].map(String);
}

/** Runs the native port; a missing compiler, a missing library or a failure becomes a row with `error`. */
export async function runNativeXmalloc(
  contender: NativeContender,
  threads: number,
  durationSeconds: number,
  parameters: XmallocParameters = XMALLOC_PARAMETERS,
): Promise<ThroughputRow> {
  const base = { label: contender.label, kind: contender.kind, threads, peakUsedBytes: null, peakFootprintBytes: null };
  try {
    const run = await runNativeProgram(XMALLOC_PROGRAM, xmallocArguments(threads, durationSeconds, parameters), {
      allocator: contender.allocator,
      timeoutSeconds: durationSeconds + NATIVE_GRACE_SECONDS,
    });
    const { frees } = parseXmallocOutput(run.lines);
    return {
      ...base,
      iterations: frees,
      wallSeconds: run.wallSeconds,
      cpuSeconds: run.cpuSeconds,
      maxRssKiB: run.maxRssKiB,
      perSecond: frees / run.wallSeconds,
      note: `the C port against ${contender.allocator === 'glibc' ? "the C library's malloc" : `${contender.allocator} (LD_PRELOAD)`}`,
    };
  } catch (error) {
    return { ...base, iterations: 0, wallSeconds: 0, perSecond: 0, error: `the native benchmark failed: ${(error as Error).message}` };
  }
}

/**
 * Reads the port's own lines (the trailer already taken off): the original's `rtime:` line,
 * then `N frees, R remote, D drained`.
 * @throws Error when the output does not have them
 */
export function parseXmallocOutput(lines: readonly string[]): { frees: number; remoteFrees: number; drainedBatches: number; rtimeLine: string } {
  const counts = /^(\d+) frees, (\d+) remote, (\d+) drained$/.exec(lines[1] ?? '');
  if (lines.length !== 2 || !/^rtime: /.test(lines[0]!) || counts === null) {
    throw new Error(`unexpected output from the native benchmark: ${lines.join('\n').slice(0, 200)}`);
  }
  return { frees: Number(counts[1]), remoteFrees: Number(counts[2]), drainedBatches: Number(counts[3]), rtimeLine: lines[0]! };
}
