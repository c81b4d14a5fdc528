/**
 * Finding the backends at run time. Each backend package is imported inside try/catch: one
 * that is missing, unbuilt or broken is reported as not available and skipped, never taking
 * the run down. Whatever registered itself is then in core's registry, so a new backend
 * package needs no change here beyond its name in `BACKEND_PACKAGES`.
 */

import { type BackendDescriptor, registeredBackends } from '@heaplab/core';

import type { UnavailableBackend } from '../report/results.js';

/** The backend packages besides core (whose `basic` is always registered). */
export const BACKEND_PACKAGES: readonly string[] = ['@heaplab/tlsf', '@heaplab/buddy', '@heaplab/slab', '@heaplab/mimalloc'];

let discovery: Promise<UnavailableBackend[]> | undefined;

/**
 * Imports every backend package once; resolves with those that could not be imported.
 */
export function discoverBackends(): Promise<UnavailableBackend[]> {
  discovery ??= (async () => {
    const unavailable: UnavailableBackend[] = [];
    for (const name of BACKEND_PACKAGES) {
      try {
        // A variable specifier keeps the bundler from inlining the package: it must be
        // resolved when the bench runs, so a backend added later is found without a rebuild.
        await import(name);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        // Node names the importing chunk too, which tells the user nothing.
        const reason = message.split('\n')[0]!.replace(/ imported from .*$/, '').slice(0, 300);
        unavailable.push({ package: name, reason: /Cannot find module/.test(reason) ? `${reason} (is it built?)` : reason });
      }
    }
    return unavailable;
  })();
  return discovery;
}

/** The registered backends, after discovery. */
export async function availableBackends(): Promise<{ backends: BackendDescriptor[]; unavailable: UnavailableBackend[] }> {
  const unavailable = await discoverBackends();
  return { backends: registeredBackends(), unavailable };
}
