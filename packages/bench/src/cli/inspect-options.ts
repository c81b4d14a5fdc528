/**
 * What `heaplab map` and `heaplab stats` share: their option parsers, and turning the
 * `--backend` and `--workload` values into rows and a run target, with errors a user can act
 * on (docs/heap-maps.md).
 */

import { AllocError } from '@heaplab/core';
import { InvalidArgumentError } from 'commander';

import { type BackendChoice, discoverBackends, resolveBackendContenders } from '../contenders/backends.js';
import type { BackendContender } from '../contenders/contender.js';
import { findMapTarget, type MapTarget, type MomentSpec, parseMoment } from '../inspect/heap-moments.js';
import { ALL_BACKENDS } from './backend-option.js';

/** `--at`: moments separated by commas (`25%,50%,100%` or `0.25,0.5,1`), each once. */
export function parseMoments(value: string): MomentSpec[] {
  const moments: MomentSpec[] = [];
  for (const part of value.split(',')) {
    let moment: MomentSpec;
    try {
      moment = parseMoment(part);
    } catch (error) {
      throw new InvalidArgumentError(error instanceof Error ? `${error.message}.` : String(error));
    }
    if (moments.some((other) => other.label === moment.label)) throw new InvalidArgumentError(`${moment.label} is named twice.`);
    moments.push(moment);
  }
  return moments;
}

/** `--workload`: a target a map can run (checked here, so a bad name fails before any run). */
export function parseTarget(value: string): MapTarget {
  try {
    return findMapTarget(value.trim());
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? `${error.message}.` : String(error));
  }
}

/**
 * The rows of `choices` (default: every backend), after discovering the backend packages.
 * @throws AllocError `UnknownBackend` or `InvalidParam` as `resolveBackendContenders`
 */
export async function inspectedBackends(choices: readonly BackendChoice[] | undefined): Promise<{ contenders: BackendContender[]; all: boolean }> {
  const unavailable = await discoverBackends();
  for (const missing of unavailable) console.error(`note: ${missing.package} is not available: ${missing.reason}`);
  const chosen = choices ?? [ALL_BACKENDS];
  return { contenders: resolveBackendContenders(chosen), all: chosen.includes(ALL_BACKENDS) };
}

/** An `AllocError` from resolving backends as a command-line error message; other errors rethrown. */
export function backendErrorMessage(error: unknown): string {
  if (error instanceof AllocError) return `error: ${error.message}`;
  throw error;
}
