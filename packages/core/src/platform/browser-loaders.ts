/**
 * The browser's loaders module (see node-loaders.ts, whose API it repeats). A page cannot
 * start a Node worker thread or read a backend module from a path, so both refuse with an
 * `Unsupported` error that says what a page does instead: start a web worker, post it the
 * heap's buffer, and attach there with the backend's descriptor.
 */

import type { Worker } from 'node:worker_threads';

import { AllocError } from '../errors.js';
import type { AnyBackendDescriptor } from '../backend/contract.js';

/** How a page gets a backend into a web worker, for both refusals. */
const IN_A_BROWSER =
  "in a browser, import the backend's package in the page and in each web worker's script (each bundle registers it), " +
  'or pass its descriptor: GlobalAllocator.attach(buffer, { backends: [descriptor] }) (docs/browsers.md)';

/** As node-loaders.ts's: where a module path is resolved from. */
export interface BackendModuleOptions {
  /** The directory a relative path and a package name are resolved from. */
  from?: string;
}

/** As node-loaders.ts's: the backend modules a worker loads first. */
export interface SpawnWorkerOptions {
  /** URLs (or paths) of backend modules the worker loads before its entry. */
  backendModules?: readonly string[];
}

/**
 * Refused: loading a module by path needs a file system.
 * @throws AllocError `Unsupported`, saying how a page registers a backend instead
 */
export async function loadBackendModule(specifier: string, _options: BackendModuleOptions = {}): Promise<AnyBackendDescriptor[]> {
  throw new AllocError('Unsupported', `loadBackendModule(${JSON.stringify(specifier)}) needs a file system, which a page does not have; ${IN_A_BROWSER}`);
}

/** No backend module is ever loaded by path in a browser: empty. */
export function loadedBackendModules(): string[] {
  return [];
}

/**
 * Refused: a page has no Node worker threads.
 * @throws AllocError `Unsupported`, saying how to start a web worker on a heap instead
 */
export function spawnWorker(entry: URL, _workerData: object = {}, _options: SpawnWorkerOptions = {}): Worker {
  throw new AllocError(
    'Unsupported',
    `spawnWorker(${entry.href}) starts a Node worker thread, which a page does not have; start a web worker ` +
      `(new Worker(url, { type: 'module' })), post it the heap's buffer and attach there; ${IN_A_BROWSER}`,
  );
}
