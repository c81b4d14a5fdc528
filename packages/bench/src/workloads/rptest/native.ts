/**
 * rptest's `native` rows: native/rptest.c, heaplab's C port of the same loop with the same
 * tables, run against a C allocator (run/native-program.ts builds and runs it). Without a
 * compiler or the allocator's library the row says so and the bench goes on.
 */

import type { NativeContender } from '../../contenders/contender.js';
import { runNativeProgram } from '../../run/native-program.js';
import type { ThroughputRow } from '../../run/throughput-rows.js';
import { MIMALLOC_BENCH_PARAMETERS, parameterArguments, type RptestParameters } from './tables.js';

/** The port's file name under native/, without `.c`. */
export const RPTEST_PROGRAM = 'rptest';

/** Seconds past its duration after which a port run is killed. */
const NATIVE_GRACE_SECONDS = 30;

/** What the port prints before its trailer. */
export interface RptestNativeOutput {
  /** Memory operations (mallocs and frees), all threads. */
  operations: number;
  /** Each thread's operations over its own loop time, summed. */
  perSecond: number;
  /** The original's figure: all operations over the sum of the threads' times. */
  perThreadSecond: number;
  /** Batches the last thread found in the inboxes. */
  drained: number;
}

/** Runs the native port; a missing compiler, a missing library or a failure becomes a row with `error`. */
export async function runNativeRptest(
  contender: NativeContender,
  threads: number,
  durationSeconds: number,
  fill: 'memset' | 'bytes' = 'memset',
  parameters: RptestParameters = MIMALLOC_BENCH_PARAMETERS,
): Promise<ThroughputRow> {
  const base = { label: contender.label, kind: contender.kind, threads, peakUsedBytes: null, peakFootprintBytes: null };
  try {
    const run = await runNativeProgram(RPTEST_PROGRAM, [String(threads), String(durationSeconds), ...parameterArguments(parameters)], {
      allocator: contender.allocator,
      timeoutSeconds: durationSeconds + NATIVE_GRACE_SECONDS,
      fill,
    });
    const parsed = parseRptestOutput(run.lines);
    return {
      ...base,
      iterations: parsed.operations,
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
 * Reads the port's four lines (the trailer already taken off).
 * @throws Error when the output does not have them
 */
export function parseRptestOutput(lines: readonly string[]): RptestNativeOutput {
  const patterns = [/^(\d+) memory ops$/, /^(\d+) memory ops\/s$/, /^(\d+) memory ops\/CPU second$/, /^(\d+) drained$/];
  const figures = patterns.map((pattern, index) => pattern.exec(lines[index] ?? ''));
  if (lines.length !== patterns.length || figures.some((match) => match === null)) {
    throw new Error(`unexpected output from the native rptest: ${lines.join('\n').slice(0, 200)}`);
  }
  const [operations, perSecond, perThreadSecond, drained] = figures.map((match) => Number(match![1]));
  return { operations: operations!, perSecond: perSecond!, perThreadSecond: perThreadSecond!, drained: drained! };
}
