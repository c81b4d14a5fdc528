/**
 * Workers of heaplab's own tests and tools, which run from its TypeScript sources. Node 20
 * cannot start a worker on a `.ts` file, and the general way (worker-bootstrap.mjs) registers
 * tsx in every worker, which then compiles each module the worker imports: 340-380 ms of wall
 * time and about 480 ms of CPU per worker, measured here on 2026-12-06 for a worker importing
 * core, mimalloc and the test kit. The test suite starts hundreds of workers, most of them to
 * be killed at one step of a death test, and that start-up was most of its CPU time.
 *
 * So, when core itself runs from its sources inside the heaplab repository, a worker's entry
 * and the backend modules it must load first are bundled with esbuild (a dev dependency of
 * the repository, never of an installed core) into one JavaScript file, which the worker
 * starts on directly: 26-27 ms. The bundle is what the bootstrap would have run, module for
 * module, with the same sources resolved through the same `heaplab-source` condition:
 * - a prelude imports each backend module before the entry and registers it as
 *   `loadBackendModule` would (`adoptBackendModule`), so the worker's registry and its
 *   `loadedBackendModules()` are the bootstrap's; it also imports the module of every backend
 *   registered in the starting thread (heaplab's packages, a test's fixture), which the
 *   bootstrap's worker would import (through tsx) when it attached to a heap of that backend,
 *   and a `.ts` module it lacks is refused saying so (`loadBackend`);
 * - every module keeps its own `import.meta.url` (the build writes each file's URL in), so
 *   files found beside a module, and workers a worker starts, are found as before;
 * - packages other than heaplab's stay imports of their own (`external`), resolved at run
 *   time from the entry's package, where the bundle is written.
 *
 * Anything outside the repository (an entry or a backend module of a user's, a temporary
 * directory, a backend the starting thread registered from there) takes the bootstrap and tsx, as it does for an installed core; so does every
 * worker when `HEAPLAB_WORKER_BUNDLE=0` is set, or when esbuild cannot be found.
 *
 * A bundle is cached on disk under `<entry's package>/node_modules/.cache/heaplab-workers/`,
 * named by a hash of the entry and the two module lists, with the size and modification time
 * of every file that went into it, of the build script and of esbuild's package.json: it is
 * used again only while all of those are unchanged (a look at about a hundred files, under a
 * millisecond), so an edited source is bundled again at the next start, in this process or
 * another. Building is synchronous (a worker is
 * started synchronously), and esbuild runs plugins only in its asynchronous API, so a miss
 * runs source-bundle-build.mjs in a child process: about 0.2 s, once per entry and change.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { environmentVariable } from '#platform';

/** The environment variable that turns bundling off (`0`), for a test of the bootstrap or a bisection. */
export const WORKER_BUNDLE_VARIABLE = 'HEAPLAB_WORKER_BUNDLE';

/** The repository root this file sits in (packages/core/src/platform/ → four levels up). */
const REPOSITORY_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** Core's module that registers backend modules, imported by the bundle's prelude. */
const BACKEND_MODULES_FILE = fileURLToPath(new URL('../facade/backend-modules.ts', import.meta.url));

/** Core's backend registry, whose worker mark the prelude sets. */
const BACKEND_REGISTRY_FILE = fileURLToPath(new URL('../facade/backend-registry.ts', import.meta.url));

/** The script that runs esbuild's asynchronous API for a miss. */
const BUILD_SCRIPT = fileURLToPath(new URL('./source-bundle-build.mjs', import.meta.url));

/**
 * A test file: a backend a test defines in its own file has that file as its module, which no
 * worker imports (it would run the test's suites); it is left out of the bundle.
 */
const TEST_FILE = /\.test\.[cm]?[jt]s$/;

/** The files a bundle was made of, as the cache records them. */
interface BundleInputs {
  /** Absolute path → `[size, mtimeMs]` when the bundle was made. */
  inputs: Record<string, [number, number]>;
}

/**
 * The URL of a bundle of `entry` that loads `backendModules` first, or undefined when the
 * worker must take the bootstrap (see the header: outside the repository, turned off, no
 * esbuild, or a file that is not a module of the repository's own).
 * @param entry the worker's entry, a `file:` URL
 * @param backendModules `file:` URLs of backend modules, in the order they are loaded
 * @param registeredModules `file:` URLs of the modules of the backends registered in the
 *   starting thread: the bundle imports those of the repository (after `backendModules`,
 *   before the entry; test files left out), since attaching to a heap of one imports its
 *   module by URL, which a worker with no TypeScript loader could not; each registers its
 *   backend as it is imported, or is found by `attach` among the exports
 */
export function sourceBundleFor(entry: URL, backendModules: readonly string[], registeredModules: readonly string[] = []): URL | undefined {
  if (environmentVariable(WORKER_BUNDLE_VARIABLE) === '0') return undefined;
  if (!existsSync(join(REPOSITORY_ROOT, 'pnpm-workspace.yaml'))) return undefined;
  const files = [entry.href, ...backendModules].map(repositoryFile);
  if (files.some((file) => file === undefined)) return undefined;
  const [entryFile, ...moduleFiles] = files as string[];
  // A registered backend from outside the repository is imported by attach through tsx, which
  // would give it a core of its own beside the bundle's: such a worker takes the bootstrap.
  const registeredFiles: string[] = [];
  for (const url of registeredModules) {
    if (!url.startsWith('file:')) continue;
    const file = repositoryFile(url);
    if (file === undefined) return undefined;
    if (!TEST_FILE.test(file) && !moduleFiles.includes(file) && !registeredFiles.includes(file)) registeredFiles.push(file);
  }
  registeredFiles.sort();
  const key = createHash('sha256')
    .update(JSON.stringify([entryFile, moduleFiles, registeredFiles]))
    .digest('hex')
    .slice(0, 20);
  const cacheDir = join(packageDirectoryOf(entryFile!), 'node_modules', '.cache', 'heaplab-workers');
  const bundle = join(cacheDir, `${key}.mjs`);
  const record = join(cacheDir, `${key}.inputs.json`);
  if (!isFresh(bundle, record)) {
    const esbuild = esbuildEntry();
    if (esbuild === undefined) return undefined;
    const request = {
      entry: entryFile,
      backendModules: moduleFiles.map((file) => pathToFileURL(file).href),
      registeredModules: registeredFiles,
      backendModulesFile: BACKEND_MODULES_FILE,
      backendRegistryFile: BACKEND_REGISTRY_FILE,
      bundle,
      record,
      root: REPOSITORY_ROOT,
      esbuild,
    };
    execFileSync(process.execPath, [BUILD_SCRIPT, JSON.stringify(request)], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  return pathToFileURL(bundle);
}

/**
 * The path of a module of the repository's own (under its root, not in a `node_modules`),
 * or undefined.
 */
function repositoryFile(url: string): string | undefined {
  if (!url.startsWith('file:')) return undefined;
  const file = fileURLToPath(url);
  const inside = relative(REPOSITORY_ROOT, file);
  if (inside.startsWith('..') || isAbsolute(inside) || inside.split(/[\\/]/).includes('node_modules')) return undefined;
  return /\.(?:[cm]?ts|m?js)$/.test(file) && existsSync(file) ? file : undefined;
}

/** The directory of the nearest `package.json` above `file` (the repository root at most). */
function packageDirectoryOf(file: string): string {
  for (let dir = dirname(file); dir.startsWith(REPOSITORY_ROOT); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  return REPOSITORY_ROOT;
}

/** Whether the bundle exists and every file it was made of has its recorded size and time. */
function isFresh(bundle: string, record: string): boolean {
  if (!existsSync(bundle) || !existsSync(record)) return false;
  let inputs: BundleInputs['inputs'];
  try {
    inputs = (JSON.parse(readFileSync(record, 'utf8')) as BundleInputs).inputs;
  } catch {
    return false;
  }
  for (const [file, [size, mtime]] of Object.entries(inputs)) {
    let now: { size: number; mtimeMs: number };
    try {
      now = statSync(file);
    } catch {
      return false;
    }
    if (now.size !== size || now.mtimeMs !== mtime) return false;
  }
  return true;
}

/** esbuild's module as the repository installs it, or undefined when it is not there. */
function esbuildEntry(): string | undefined {
  try {
    return pathToFileURL(createRequire(join(REPOSITORY_ROOT, 'package.json')).resolve('esbuild')).href;
  } catch {
    return undefined;
  }
}
