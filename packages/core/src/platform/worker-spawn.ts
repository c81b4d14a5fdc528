/**
 * Starting a worker on a module URL, from the build or from the sources. Node 20 cannot start
 * a worker on a `.ts` file, so a TypeScript entry (tests and tools run from source) goes
 * through `worker-bootstrap.mjs`, which loads tsx first (about 0.2-0.4 s); a JavaScript
 * entry starts directly (about 35 ms), as a TypeScript entry does on Deno and Bun, which load
 * TypeScript themselves (docs/deno-and-bun.md). A worker has its own backend registry, so one that
 * must know backends from outside heaplab (`loadBackendModule`) also goes through the
 * bootstrap, which loads those modules before the entry. From heaplab's own sources (its
 * tests and tools), both are bundled into one JavaScript file instead (source-bundle.ts).
 */

import { Worker } from 'node:worker_threads';

import { AllocError } from '../errors.js';
import { loadedBackendModules } from '../facade/backend-modules.js';
import { registeredModuleUrls } from '../facade/backend-registry.js';
import { sourceBundleFor } from './source-bundle.js';
import { isTypeScriptFile, runsTypeScriptNatively } from './typescript.js';

/**
 * The `workerData` key under which the bootstrap finds the backend modules to load; a caller
 * may also put its own list there (a test kit does), which is loaded as well.
 */
const BACKEND_MODULES_KEY = 'heaplabBackendModules';

/** Whether core itself runs from its TypeScript sources (tests, tools under tsx). */
const fromSource = import.meta.url.endsWith('.ts');

/** How a worker is started, besides its entry and data. */
export interface SpawnWorkerOptions {
  /**
   * URLs (or paths) of backend modules the worker loads before its entry, with
   * `loadBackendModule` (default: `loadedBackendModules()`, every module this thread loaded).
   */
  backendModules?: readonly string[];
}

/**
 * Starts a worker on `entry`.
 * @param entry the worker module's URL (`.ts` or `.js`)
 * @param workerData data for the worker, as `workerData`
 * @param options the backend modules the worker loads first
 * @throws AllocError `InvalidParam` when `workerData.heaplabBackendModules` is not a list of strings
 */
export function spawnWorker(entry: URL, workerData: object = {}, { backendModules = loadedBackendModules() }: SpawnWorkerOptions = {}): Worker {
  const modules = [...new Set([...backendModules, ...modulesIn(workerData)])];
  // Deno and Bun start a worker on a .ts entry themselves.
  const needsTsx = isTypeScriptFile(entry.pathname) && !runsTypeScriptNatively();
  if (!needsTsx && modules.length === 0) return new Worker(entry, { workerData });
  // From heaplab's own sources, one JavaScript bundle of the entry and its modules starts in
  // a tenth of the time tsx takes (source-bundle.ts).
  const bundle = fromSource && !runsTypeScriptNatively() ? sourceBundleFor(entry, modules, registeredModuleUrls()) : undefined;
  if (bundle !== undefined) return new Worker(bundle, { workerData, execArgv: withoutTsxPreload(process.execArgv) });
  return new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), {
    workerData: {
      ...workerData,
      heaplabEntry: entry.href,
      [BACKEND_MODULES_KEY]: modules,
      // A JavaScript entry resolves core as the core that started it does: started from
      // source, the worker must load the same sources, or it would have a registry of its own.
      heaplabFromSource: fromSource,
    },
  });
}

/** The backend modules a caller put in `workerData` itself. */
function modulesIn(workerData: object): string[] {
  const given = (workerData as Record<string, unknown>)[BACKEND_MODULES_KEY];
  if (given === undefined) return [];
  if (!Array.isArray(given) || !given.every((item) => typeof item === 'string')) {
    throw new AllocError('InvalidParam', `workerData.${BACKEND_MODULES_KEY} must be a list of module URLs or paths`);
  }
  return given;
}

/** tsx named as a package (`tsx`, `tsx/esm`) or by a path into its package folder. */
const TSX_MODULE = /^tsx(?:\/|$)|[\\/]node_modules[\\/]tsx[\\/]/;

/**
 * Node options for a worker that needs no TypeScript loader: the process's own, less a
 * preload of tsx (`--import tsx`, as heaplab's command line runs from its sources), which a
 * worker inherits and would load for nothing (about 80 ms a worker).
 */
export function withoutTsxPreload(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const option = execArgv[i]!;
    if (option === '--import' && TSX_MODULE.test(execArgv[i + 1] ?? '')) i++;
    else if (!(option.startsWith('--import=') && TSX_MODULE.test(option.slice('--import='.length)))) kept.push(option);
  }
  return kept;
}
