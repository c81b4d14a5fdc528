/**
 * Parsers for the `heaplab` options, in commander's form: each returns the value or throws
 * `InvalidArgumentError`, which commander reports as `error: option '...' argument '...' is
 * invalid. <reason>` and exit status 1, as bench-malloc-thread's usage error. `--backend` has
 * a grammar of its own, in backend-option.ts.
 */

import { InvalidArgumentError } from 'commander';

import { ALL_BASELINES, BASELINE_NAMES, type BaselineName } from '../contenders/contender.js';

/** `1,2,4`: positive integers, at most `MAX_THREADS`. */
export function parseThreadList(value: string): number[] {
  const counts = value.split(',').map((part) => part.trim());
  const parsed = counts.map((part) => {
    const count = Number(part);
    if (part === '' || !Number.isInteger(count) || count < 1 || count > MAX_THREADS) {
      throw new InvalidArgumentError(`thread counts are integers from 1 to ${MAX_THREADS}, separated by commas; '${part}' is not one.`);
    }
    return count;
  });
  // The same count twice would run the same rows twice and compare each with itself.
  const twice = parsed.find((count, at) => parsed.indexOf(count) !== at);
  if (twice !== undefined) throw new InvalidArgumentError(`thread count ${twice} is given twice.`);
  return parsed;
}

/** Most threads one run may use (the heap's thread registry holds 64 by default). */
export const MAX_THREADS = 32;

/**
 * The shortest timed run: the loops look at the clock once per batch (1024 iterations, tens
 * of microseconds) and a worker takes milliseconds to start, so a run shorter than this
 * measures those, not the allocator, and prints a rate of 0.
 */
export const MIN_DURATION_SECONDS = 0.01;

/** A number of seconds, at least `MIN_DURATION_SECONDS`. */
export function parseDuration(value: string): number {
  const seconds = Number(value);
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds <= 0) {
    throw new InvalidArgumentError(`the duration is a number of seconds greater than 0; '${value}' is not.`);
  }
  if (seconds < MIN_DURATION_SECONDS) throw new InvalidArgumentError(`a run of ${value} s is too short to time; give at least ${MIN_DURATION_SECONDS}.`);
  return seconds;
}

/** A positive integer. */
export function parsePositiveInteger(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(number) || number < 1) {
    throw new InvalidArgumentError(`expected an integer of 1 or more; '${value}' is not.`);
  }
  return number;
}

/**
 * Most iterations a map, stats or recording run takes: about a minute of glibc-thread's loop
 * (a million take half a second). Beyond it a typo would run for days.
 */
export const MAX_RUN_ITERATIONS = 100_000_000;

/** `--iterations`: a positive integer up to `MAX_RUN_ITERATIONS`. */
export function parseIterations(value: string): number {
  const iterations = parsePositiveInteger(value);
  if (iterations > MAX_RUN_ITERATIONS) throw new InvalidArgumentError(`at most ${MAX_RUN_ITERATIONS} iterations (about a minute); '${value}' is more.`);
  return iterations;
}

/** A heap size in MiB: a positive multiple of 4 (the heap's unit is 4 MiB). */
export function parseHeapMiB(value: string): number {
  const mib = parsePositiveInteger(value);
  if (mib % 4 !== 0 || mib > 4092) throw new InvalidArgumentError(`heap sizes are multiples of 4 MiB up to 4092; '${value}' is not.`);
  return mib;
}

/** `all`, `none`, or baseline names separated by commas. */
export function parseBaselines(value: string): BaselineName[] {
  if (value === 'all') return [...ALL_BASELINES];
  if (value === 'none') return [];
  return value.split(',').map((part) => {
    const name = part.trim() as BaselineName;
    if (!BASELINE_NAMES.includes(name)) {
      throw new InvalidArgumentError(`'${part}' is no baseline; valid: ${BASELINE_NAMES.join(', ')}, or all / none.`);
    }
    return name;
  });
}
