/**
 * Letting this thread import TypeScript modules, for backends loaded from `.ts` files
 * (`loadBackendModule`). Node 20 cannot load TypeScript itself; tsx's ESM loader can, once
 * registered. It is registered at most once per thread, and not at all when the thread can
 * already load TypeScript: a process started with `--import tsx`, a worker started through
 * worker-bootstrap.mjs for a `.ts` entry, or a test runner that compiles TypeScript itself.
 * A second registration over an active tsx makes some `.ts` files fail to load, so the
 * thread is asked first, by importing a small TypeScript module of core's own.
 * Deno and Bun load TypeScript natively (`runsTypeScriptNatively`): there the callers skip
 * all of this.
 *
 * tsx is an optional peer dependency of core: it is imported only here, only when needed.
 */

import { AllocError } from '../errors.js';

/** File name endings of the modules tsx loads (TypeScript as ESM, as CommonJS, or either). */
const TYPESCRIPT_FILE = /\.[cm]?ts$/;

/**
 * Whether this runtime loads TypeScript modules itself, in every thread: Deno and Bun strip
 * the types of a `.ts` module as they load it, so neither tsx nor worker-bootstrap.mjs is
 * needed there (tsx's loader hooks are Node's; Deno has none to register them in). Node 20
 * does not.
 */
export function runsTypeScriptNatively(): boolean {
  return 'Deno' in globalThis || globalThis.process?.versions?.bun !== undefined;
}

/** Whether the file a path or URL names is TypeScript, judged by its name. */
export function isTypeScriptFile(pathOrUrl: string): boolean {
  return TYPESCRIPT_FILE.test(pathOrUrl.replace(/[?#].*$/, ''));
}

/**
 * The module imported to ask whether TypeScript loads here: beside this file in the sources,
 * beside the chunks in the build (tsup copies it there, as it does worker-bootstrap.mjs).
 */
const PROBE_URL = new URL('./typescript-probe.ts', import.meta.url).href;

/** This thread's one attempt at making TypeScript loadable, once one has succeeded. */
let enabling: Promise<void> | undefined;

/**
 * Makes this thread able to import TypeScript modules: does nothing when it already can,
 * else registers tsx's ESM loader.
 * @param forWhat what needs it, for the error message (a module's path)
 * @throws AllocError `UnknownBackend` when tsx is needed and cannot be imported
 */
export function enableTypeScript(forWhat: string): Promise<void> {
  enabling ??= registerTsxUnlessActive().catch((error: unknown) => {
    // A failed attempt is not kept: tsx may be installed before the next call.
    enabling = undefined;
    throw error;
  });
  return enabling.catch((error: unknown) => {
    if (error instanceof AllocError) throw new AllocError(error.kind, `${forWhat} is TypeScript: ${error.message}`);
    throw error;
  });
}

async function registerTsxUnlessActive(): Promise<void> {
  if (await typescriptLoadsHere()) return;
  let tsx: typeof import('tsx/esm/api');
  try {
    tsx = await import('tsx/esm/api');
  } catch (error) {
    throw new AllocError(
      'UnknownBackend',
      'loading it needs tsx, which could not be imported (' +
        `${(error as Error).message.split('\n')[0]}); install tsx beside heaplab (npm install tsx), or build the module to JavaScript`,
    );
  }
  tsx.register();
}

/**
 * Whether this thread loads TypeScript already. Only Node's "unknown file extension" error
 * means no; any other failure (the probe missing from a build) is a packaging fault, thrown.
 */
async function typescriptLoadsHere(): Promise<boolean> {
  try {
    const probe = (await import(PROBE_URL)) as { typescriptLoads?: unknown };
    return probe.typescriptLoads === true;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_UNKNOWN_FILE_EXTENSION') return false;
    throw error;
  }
}
