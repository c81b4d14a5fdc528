/**
 * The suite's `native` rows: native/arceos.c, heaplab's C port of the same tests, run once
 * per test against a C allocator (run/native-program.ts builds and runs it). A C allocator
 * has no `check()` and no figures of its own, so a native row has the test's own check only
 * and no memory check.
 */

import type { NativeContender } from '../../contenders/contender.js';
import { runNativeProgram } from '../../run/native-program.js';
import { type ArceosRow, type ArceosTest, failedTestRow, medianTestRow, type TestRun } from './suite.js';
import { ARCEOS_THREADS } from './threads-loop.js';

/** The port's file name under native/, without `.c`. */
export const ARCEOS_PROGRAM = 'arceos';

/** Seconds a port run may take before it is killed: the full thread test with three repeats, and room. */
const NATIVE_TIMEOUT_SECONDS = 600;

/** Checks of a native test: its own. */
export const NATIVE_CHECKS = 1;

/**
 * Runs `test` in the C port `repeat` times (one process); a missing compiler or library, a
 * failed check (the port exits non-zero) or a timeout becomes a row with `error`.
 */
export async function runNativeArceosTest(contender: NativeContender, test: ArceosTest, count: number, repeat: number): Promise<ArceosRow> {
  const base = {
    label: contender.label,
    kind: contender.kind,
    test: test.name,
    count,
    checksTotal: NATIVE_CHECKS,
    note: `the C port against ${contender.allocator === 'glibc' ? "the C library's malloc" : `${contender.allocator} (LD_PRELOAD)`}`,
    ...(test.run === undefined ? { threads: ARCEOS_THREADS } : {}),
  };
  try {
    const run = await runNativeProgram(ARCEOS_PROGRAM, [test.name, String(count), String(repeat)], {
      allocator: contender.allocator,
      timeoutSeconds: NATIVE_TIMEOUT_SECONDS,
    });
    return medianTestRow(base, parseNativeRuns(run.lines, repeat));
  } catch (error) {
    return failedTestRow(base, new Error(`the native test failed: ${(error as Error).message}`));
  }
}

/**
 * Reads the port's lines (the trailer already taken off): one `run SECONDS FREE_SECONDS
 * CHECKS` line per repetition (FREE_SECONDS is `-` for a test without a free phase).
 * @throws Error when the output does not have `repeat` of them
 */
export function parseNativeRuns(lines: readonly string[], repeat: number): TestRun[] {
  const runs: TestRun[] = [];
  for (const line of lines) {
    const match = /^run (\S+) (\S+) (\d+)$/.exec(line);
    if (match === null) continue;
    runs.push({
      seconds: Number(match[1]),
      ...(match[2] !== '-' ? { freeSeconds: Number(match[2]) } : {}),
      memory: null,
      checksPassed: Number(match[3]),
    });
  }
  if (runs.length !== repeat || runs.some((run) => !Number.isFinite(run.seconds))) {
    throw new Error(`unexpected output from the native test (${runs.length} of ${repeat} runs): ${lines.join('\n').slice(0, 200)}`);
  }
  return runs;
}
