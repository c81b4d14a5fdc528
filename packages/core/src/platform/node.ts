/**
 * Node's platform module: what core asks of the runtime it runs in, answered with Node's own
 * modules. Core imports it as `#platform` (package.json `imports`), which a bundler targeting
 * a browser resolves to browser.ts instead, so no `node:` import is reachable from core's
 * entries there. Deno and Bun resolve `#platform` here too: both provide these modules.
 *
 * Only what needs no other part of core lives here; starting workers and loading backend
 * modules by path, which need the registry, are the loaders module (node-loaders.ts).
 */

import { threadId } from 'node:worker_threads';

import { AllocError } from '../errors.js';

/** The runtime family this module serves, for messages and tests. */
export const PLATFORM_NAME: 'node' | 'browser' = 'node';

/**
 * The calling thread's id among the threads of this process, stored in its registry slot so
 * the main thread can find and release a dead worker's slots (`releaseThreadsOf`,
 * `watchWorker`): `worker_threads.threadId`, 0 on the main thread.
 */
export const platformThreadId: number = threadId;

/**
 * The environment variable `name`, or undefined when it is not set.
 * @throws AllocError `Unsupported` when the runtime refuses the read (Deno without
 *   `--allow-env` throws its own `NotCapable`, which would reach the caller untyped)
 */
export function environmentVariable(name: string): string | undefined {
  try {
    return process.env[name];
  } catch (error) {
    throw new AllocError(
      'Unsupported',
      `cannot read the environment variable ${name} (${String(error)}); on Deno, run with --allow-env=HEAPLAB_CHECKED,HEAPLAB_BACKEND, or pass both checked and backend to create()`,
    );
  }
}

/**
 * Whether the file `url` names belongs to one of `packageNames`: the nearest `package.json`
 * above it (looking at most 8 directories up) names one of them. False for a file that is
 * not there or a manifest that cannot be read.
 */
export async function isFileOfPackage(url: URL, packageNames: ReadonlySet<string>): Promise<boolean> {
  const [{ readFileSync, existsSync }, { dirname, join }, { fileURLToPath }] = await Promise.all([import('node:fs'), import('node:path'), import('node:url')]);
  const file = fileURLToPath(url);
  if (!existsSync(file)) return false;
  for (let dir = dirname(file), depth = 0; depth < 8; depth++) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        const name = (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name;
        return typeof name === 'string' && packageNames.has(name);
      } catch {
        return false;
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
  return false;
}

/**
 * The `file:` URLs the process's main module goes by (the script node was started on, which
 * `process.argv[1]` names in every thread): as given and with symbolic links resolved, since
 * Node runs it from its real path. Empty when there is no main script (a REPL, `-e`).
 */
export async function mainModuleUrls(): Promise<string[]> {
  const main = globalThis.process?.argv?.[1];
  if (typeof main !== 'string' || main === '') return [];
  const [{ realpathSync }, { pathToFileURL }] = await Promise.all([import('node:fs'), import('node:url')]);
  const urls = [pathToFileURL(main).href];
  try {
    urls.push(pathToFileURL(realpathSync(main)).href);
  } catch {
    // A main module that is gone cannot be imported either; its given path is enough.
  }
  return urls;
}
