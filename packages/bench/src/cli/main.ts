#!/usr/bin/env node
/**
 * The `heaplab` bin (built as dist/cli.js): parses the command line and runs it. The program
 * itself is in program.ts, which tests import without running it.
 */

import { makeProgram } from './program.js';

try {
  await makeProgram().parseAsync(process.argv);
} catch (error) {
  // What the output-path checks cannot foresee (a full disk, a folder removed meanwhile)
  // ends in one line, as every other failure of a run does, not in a stack trace.
  if (!isFileSystemError(error)) throw error;
  console.error(`error: ${error.message}`);
  process.exitCode = 1;
}

/** A Node file-system error: an `errno` code (ENOSPC, EACCES, ...) and the call that failed. */
function isFileSystemError(error: unknown): error is Error & { code: string; syscall: string } {
  return error instanceof Error && typeof (error as { code?: unknown }).code === 'string' && typeof (error as { syscall?: unknown }).syscall === 'string';
}
