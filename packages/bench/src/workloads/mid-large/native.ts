/**
 * mid-large's `native` rows: native/mid-large.c, heaplab's C port of the same loop, run
 * against a C allocator (run/native-rate-row.ts builds, runs and reads it).
 */

import type { NativeRateProgram } from '../../run/native-rate-row.js';

/** The port: `mid-large THREADS DURATION`, printing "N replacements" and "R replacements per second". */
export const MID_LARGE_PORT: NativeRateProgram = {
  program: 'mid-large',
  unit: 'replacements',
  args: (threads, durationSeconds) => [String(threads), String(durationSeconds)],
};
