/**
 * alloc-test's `native` rows: native/alloc-test.c, heaplab's C port of the same loop, run
 * against a C allocator (run/native-rate-row.ts builds, runs and reads it).
 */

import type { NativeRateProgram } from '../../run/native-rate-row.js';

/** The port: `alloc-test THREADS DURATION`, printing "N operations" and "R operations per second". */
export const ALLOC_TEST_PORT: NativeRateProgram = {
  program: 'alloc-test',
  unit: 'operations',
  args: (threads, durationSeconds) => [String(threads), String(durationSeconds)],
};
