/**
 * sh6bench's `native` rows: native/sh6bench.c, heaplab's C port of the same loop, run
 * against a C allocator (run/native-rate-row.ts builds, runs and reads it).
 */

import type { NativeRateProgram } from '../../run/native-rate-row.js';

/** The port: `sh6bench THREADS DURATION`, printing "N allocations" and "R allocations per second". */
export const SH6_PORT: NativeRateProgram = {
  program: 'sh6bench',
  unit: 'allocations',
  args: (threads, durationSeconds) => [String(threads), String(durationSeconds)],
};
