/**
 * How backends plug in. Core never imports a backend package: a package exports a
 * `BackendDescriptor` and registers it when imported. A heap stores its backend's name and
 * the URL of the module exporting the descriptor, so a worker that attaches finds the same
 * backend by importing that URL, even if it never imported the package itself. In a bundled
 * app the URL is the bundle's (the backend's `import.meta.url` is the bundle's), which is
 * never imported: there the worker's own bundle must register the backend.
 *
 * The registry is per JS realm (each worker has its own); it caches descriptors, it holds no
 * allocator state.
 */

import type { AnyBackendDescriptor } from '../backend/contract.js';
import { basicBackend } from '../basic/index.js';
import { AllocError } from '../errors.js';
import { BACKEND_NAME_PATTERN } from '../memory/shared-heap.js';
import { isFileOfPackage, mainModuleUrls } from '#platform';

/** Known backends by name. Core's own basic backend is known from the start (no import side effect). */
const registry = new Map<string, AnyBackendDescriptor>([[basicBackend.name, basicBackend]]);

/** The packages of the heaplab backends that are not part of core, for error hints. */
const BACKEND_PACKAGES: Record<string, string> = {
  tlsf: '@heaplab/tlsf',
  buddy: '@heaplab/buddy',
  slab: '@heaplab/slab',
  mimalloc: '@heaplab/mimalloc',
};

/**
 * Makes a backend known by name in this thread. Registering the same descriptor twice is a
 * no-op; a different descriptor under a taken name is an error.
 * @throws AllocError `InvalidParam` when another backend already has the name
 */
export function registerBackend(descriptor: AnyBackendDescriptor): void {
  const known = registry.get(descriptor.name);
  if (known !== undefined && known !== descriptor && known.moduleUrl !== descriptor.moduleUrl) {
    throw new AllocError('InvalidParam', `a different backend named '${descriptor.name}' is already registered (from ${known.moduleUrl})`);
  }
  if (known === undefined) registry.set(descriptor.name, descriptor);
}

/** The backends registered in this thread, by name. */
export function registeredBackends(): AnyBackendDescriptor[] {
  return [...registry.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** The module URLs of the backends registered in this thread, each once. */
export function registeredModuleUrls(): string[] {
  return [...new Set([...registry.values()].map((descriptor) => descriptor.moduleUrl))];
}

/**
 * Set in a worker that runs on a bundle of heaplab's sources (platform/source-bundle.ts): it
 * has no TypeScript loader, so `loadBackend` says why it cannot import a `.ts` module.
 */
let sourceBundleWorker = false;

/**
 * In a worker bundled from heaplab's sources, the namespaces of the backend modules the bundle
 * holds, by URL: `loadBackend` takes a module from here where another thread imports it.
 */
const bundledModules = new Map<string, Record<string, unknown>>();

/**
 * Marks this thread as a worker bundled from heaplab's sources and gives the backend modules
 * the bundle holds (the bundle's prelude calls it, before the worker's entry runs).
 */
export function markSourceBundleWorker(modules: Record<string, Record<string, unknown>>): void {
  sourceBundleWorker = true;
  for (const [url, exports] of Object.entries(modules)) bundledModules.set(url, exports);
}

/**
 * The registered backend called `name`.
 * @throws AllocError `UnknownBackend` listing the valid names and how to add the missing one
 */
export function findBackend(name: string): AnyBackendDescriptor {
  const descriptor = registry.get(name);
  if (descriptor !== undefined) return descriptor;
  const valid = [...registry.keys()].sort().join(', ');
  const pkg = BACKEND_PACKAGES[name];
  const hint = pkg !== undefined ? `; import '${pkg}' to register it` : '';
  throw new AllocError('UnknownBackend', `unknown backend '${name}' (valid: ${valid})${hint}`);
}

/** True when `value` has the shape of a `BackendDescriptor`. */
export function isBackendDescriptor(value: unknown): value is AnyBackendDescriptor {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<AnyBackendDescriptor>;
  return (
    typeof candidate.name === 'string' &&
    typeof candidate.moduleUrl === 'string' &&
    typeof candidate.create === 'function' &&
    typeof candidate.normalizeOptions === 'function'
  );
}

/** Module URLs this thread has been told it may import for `attach` (`trustBackendModule`). */
const trustedModules = new Set<string>();

/**
 * The packages whose modules `attach` imports without being told to: heaplab's own. A module
 * URL read from a heap is imported only when it is a file of one of these packages (found by
 * the nearest `package.json`), was trusted explicitly, or names a registered backend.
 */
const BUILT_IN_PACKAGES = new Set(['@heaplab/core', ...Object.values(BACKEND_PACKAGES)]);

/**
 * Lets `attach` in this thread import the backend module at `moduleUrl` when a heap names
 * it (a backend from outside heaplab; heaplab's own packages need no call).
 */
export function trustBackendModule(moduleUrl: string): void {
  trustedModules.add(moduleUrl);
}

/**
 * Whether `moduleUrl` is a file inside one of heaplab's own backend packages: the nearest
 * `package.json` above it names one. Anyone who can write the shared buffer can write a
 * module URL there; this keeps them from making every attaching thread run their code
 * (a `data:` URL, or any file but heaplab's).
 */
async function isBuiltInModule(moduleUrl: string): Promise<boolean> {
  let url: URL;
  try {
    url = new URL(moduleUrl);
  } catch {
    return false;
  }
  if (url.protocol !== 'file:' || url.search !== '' || url.hash !== '') return false;
  return isFileOfPackage(url, BUILT_IN_PACKAGES);
}

/**
 * Whether `descriptor` was defined in the very file this code runs from, that is, bundled
 * together with core (esbuild, rollup, webpack): its `moduleUrl` (`import.meta.url` where it
 * was defined) is then the application's bundle, not a module that defines a backend and
 * nothing else. Unbundled, core and a backend package are always different files. Core's own
 * basic backend is left out: it is registered in every thread, so its URL is never imported.
 */
export function isBundledWithCore(descriptor: AnyBackendDescriptor): boolean {
  return descriptor !== basicBackend && descriptor.moduleUrl === import.meta.url;
}

/** Where `loadBackend` learns more about the module URL than the URL itself. */
export interface BackendModuleOrigin {
  /** Core saw at creation that the backend was bundled into the application (`HeapFlag.bundledBackend`). */
  bundled?: boolean;
}

/**
 * Why `moduleUrl` is an application rather than a backend module, or `undefined` when it is
 * not known to be one: the creating thread saw it bundled, it is the file this thread's core
 * runs from (a worker's own bundle), or it is the process's main module (the script node was
 * started on, which `process.argv[1]` names in every thread). Importing an application
 * would run it again: its top-level code would make a heap and start workers, each of which
 * would do the same.
 */
async function applicationModule(moduleUrl: string, origin: BackendModuleOrigin): Promise<string | undefined> {
  if (origin.bundled === true) return 'the application bundle the heap was created in';
  if (moduleUrl === import.meta.url) return "the file this thread's heaplab code runs from";
  if (!moduleUrl.startsWith('file:')) return undefined;
  const candidates = await mainModuleUrls();
  return candidates.includes(moduleUrl) ? "the process's main module" : undefined;
}

/** How to make backend `name` known to an attaching thread, for error messages. */
function registerHint(name: string): string {
  const pkg = BACKEND_PACKAGES[name];
  const source = pkg !== undefined ? `'${pkg}'` : 'the module that defines it';
  return (
    `import ${source} in this thread's code (in a bundled app: in the worker's entry, so that its bundle registers ` +
    'the backend) or pass its descriptor (attach(buffer, { backends: [descriptor] }))'
  );
}

/**
 * Imports the module at `moduleUrl` and registers the descriptor named `name` that it
 * exports. This is how `attach` finds a heap's backend in a fresh worker. A backend already
 * registered under `name` is used as it is; otherwise the module must be one of heaplab's
 * own packages, be listed in `trusted`, or have been trusted with `trustBackendModule`, and
 * it must not be an application: a bundle the backend was compiled into (`origin.bundled`,
 * or this thread's own file) or the process's main module is never imported, even trusted.
 * @throws AllocError `UnknownBackend` when the module is an application, is not trusted,
 *   cannot be imported or exports no such descriptor; the message says how to register it
 */
export async function loadBackend(
  name: string,
  moduleUrl: string,
  trusted: readonly string[] = [],
  origin: BackendModuleOrigin = {},
): Promise<AnyBackendDescriptor> {
  const known = registry.get(name);
  if (known !== undefined) return known;
  const application = await applicationModule(moduleUrl, origin);
  if (application !== undefined) {
    throw new AllocError(
      'UnknownBackend',
      `backend '${name}' is not registered in this thread, and the heap names ${JSON.stringify(moduleUrl.slice(0, 200))} as its module, ` +
        `which is ${application}: the backend was bundled into the application, and attach does not import an application ` +
        `(that would run it again); ${registerHint(name)}`,
    );
  }
  if (!trustedModules.has(moduleUrl) && !trusted.includes(moduleUrl) && !(await isBuiltInModule(moduleUrl))) {
    throw new AllocError(
      'UnknownBackend',
      `backend '${name}': the heap names the module ${JSON.stringify(moduleUrl.slice(0, 200))}, which is not one of ` +
        `heaplab's backend packages, so attach does not import it; ${registerHint(name)}, or trust the module ` +
        '(attach(buffer, { trustModules: [url] }) or trustBackendModule(url))',
    );
  }
  const bundled = bundledModules.get(moduleUrl);
  if (bundled === undefined && sourceBundleWorker && /\.[cm]?ts$/.test(new URL(moduleUrl).pathname)) {
    throw new AllocError(
      'UnknownBackend',
      `backend '${name}' could not be loaded from ${moduleUrl}: this worker runs on a bundle of heaplab's sources, which holds the ` +
        'modules of the backends registered in the thread that started it and no TypeScript loader (source-bundle.ts); register ' +
        "the backend in that thread, pass its module in spawnWorker's backendModules, or set HEAPLAB_WORKER_BUNDLE=0",
    );
  }
  let exports: Record<string, unknown>;
  try {
    exports = bundled ?? ((await import(moduleUrl)) as Record<string, unknown>);
  } catch (error) {
    throw new AllocError('UnknownBackend', `backend '${name}' could not be loaded from ${moduleUrl}: ${(error as Error).message}`);
  }
  // A module may register the backend as a side effect without exporting it: a chunk of a
  // code-split bundle that holds the backend package's code does.
  const descriptor =
    Object.values(exports).find((value): value is AnyBackendDescriptor => isBackendDescriptor(value) && value.name === name) ?? registry.get(name);
  if (descriptor === undefined) {
    throw new AllocError('UnknownBackend', `${moduleUrl} exports no backend named '${name}'; ${registerHint(name)}`);
  }
  registerBackend(descriptor);
  return descriptor;
}

/** A backend named with its options, as `HEAPLAB_BACKEND` or `--backend` give it. */
export interface BackendSpec {
  name: string;
  options: Record<string, unknown>;
}

/**
 * Parses `name` or `name:key=value,key=value` (for example `basic:strategy=best-fit`).
 * Numbers and `true`/`false` become numbers and booleans; the backend checks the rest.
 * @throws AllocError `InvalidParam` for a malformed spec
 */
export function parseBackendSpec(spec: string): BackendSpec {
  const [rawName, rawOptions] = splitOnce(spec.trim(), ':');
  const name = rawName.trim();
  if (!BACKEND_NAME_PATTERN.test(name)) {
    throw new AllocError('InvalidParam', `backend spec '${spec}' must be a lowercase name, optionally followed by :key=value,...`);
  }
  const options: Record<string, unknown> = {};
  if (rawOptions !== undefined && rawOptions.trim() === '') {
    throw new AllocError('InvalidParam', `backend spec '${spec}' has nothing after its ':'; give key=value options, or the name alone`);
  }
  if (rawOptions !== undefined) {
    for (const pair of rawOptions.split(',')) {
      const [key, value] = splitOnce(pair, '=');
      if (value === undefined || key.trim() === '') {
        throw new AllocError('InvalidParam', `backend option '${pair}' in '${spec}' is not key=value`);
      }
      // Two values for one option are a typo to point out, not a choice to make silently.
      if (Object.hasOwn(options, key.trim())) throw new AllocError('InvalidParam', `backend option '${key.trim()}' is given twice in '${spec}'`);
      options[key.trim()] = parseOptionValue(value.trim());
    }
  }
  return { name, options };
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

function parseOptionValue(value: string): unknown {
  if (value === 'true') return true;
  if (value === 'false') return false;
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  return value;
}
