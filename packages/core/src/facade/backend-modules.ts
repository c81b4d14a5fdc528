/**
 * Backends from outside heaplab's packages: a module named by a path (a `.ts` file is loaded
 * through tsx) or by the name of a package installed where the user works. Every
 * `BackendDescriptor` the module exports is registered and trusted for `attach`, and the
 * module's URL is remembered, so that what this thread starts can load the same modules
 * first: `spawnWorker` hands `loadedBackendModules()` to its workers, and the bench sends
 * them to the processes it forks. A worker or a forked process has a registry of its own
 * and would otherwise know only heaplab's backends.
 *
 * Node's modules are imported inside the functions, as in backend-registry.ts, so that core
 * keeps no top-level import of `node:fs` or `node:module`.
 */

import type { AnyBackendDescriptor } from '../backend/contract.js';
import { AllocError } from '../errors.js';
import { enableTypeScript, isTypeScriptFile, runsTypeScriptNatively } from '../platform/typescript.js';
import { isBackendDescriptor, registerBackend, trustBackendModule } from './backend-registry.js';

/** Where `loadBackendModule` starts looking. */
export interface BackendModuleOptions {
  /** The directory a relative path and a package name are resolved from (default: the working directory). */
  from?: string;
}

/** Each module's load in this thread, by its URL; a failed load is dropped, so it can be retried. */
const loads = new Map<string, Promise<AnyBackendDescriptor[]>>();

/** The URLs of the modules loaded in this thread, in the order their loads completed. */
const loaded: string[] = [];

/**
 * Loads the backend module `specifier` names and registers every backend descriptor it
 * exports. `specifier` is a `file:` URL; a path, absolute, starting with `./` or `../`, or
 * naming an existing file relative to `from`; or else the name of a package (with an
 * optional subpath) installed in `from` or a directory above it, resolved as `import`
 * resolves it (its `exports` under the `node`, `import` and `default` conditions, else
 * `main`). A TypeScript file (`.ts`, `.mts`, `.cts`) is loaded through tsx, registered once
 * per thread when the thread cannot load TypeScript already. The module and each
 * descriptor's `moduleUrl` are trusted (`trustBackendModule`), so `attach` takes heaps
 * created with them. Loading a module again is a no-op that returns the same descriptors.
 * @returns the descriptors the module exports
 * @throws AllocError `UnknownBackend` when there is no such file or package, the module
 *   cannot be loaded (for TypeScript: tsx is not installed) or exports no descriptor;
 *   `InvalidParam` when a descriptor's name is taken by a different registered backend
 */
export async function loadBackendModule(specifier: string, { from }: BackendModuleOptions = {}): Promise<AnyBackendDescriptor[]> {
  const url = await resolveBackendModule(specifier, from ?? process.cwd());
  let load = loads.get(url);
  if (load === undefined) {
    load = registerModule(url).then(
      (descriptors) => {
        loaded.push(url);
        return descriptors;
      },
      (error: unknown) => {
        loads.delete(url);
        throw error;
      },
    );
    loads.set(url, load);
  }
  return load;
}

/** The URLs of the backend modules loaded in this thread (`loadBackendModule`), in order. */
export function loadedBackendModules(): string[] {
  return [...loaded];
}

/**
 * Registers a backend module that this thread imported another way, as if `loadBackendModule`
 * had loaded it from `url`: its descriptors are registered and trusted, and `url` joins
 * `loadedBackendModules()`. A worker bundled from heaplab's sources (source-bundle.ts)
 * imports its backend modules statically, then calls this for each.
 * @throws AllocError as `loadBackendModule` for a module that exports no descriptor
 */
export function adoptBackendModule(url: string, exports: Record<string, unknown>): void {
  if (loads.has(url)) return;
  loads.set(url, Promise.resolve(registerExports(url, url, exports)));
  loaded.push(url);
}

/** Imports the module at `url`, registers and trusts what it exports. */
async function registerModule(url: string): Promise<AnyBackendDescriptor[]> {
  const { fileURLToPath } = await import('node:url');
  const file = fileURLToPath(url);
  // Deno and Bun import TypeScript themselves: no probe, no tsx.
  if (isTypeScriptFile(file) && !runsTypeScriptNatively()) await enableTypeScript(`the backend module ${file}`);
  let exports: Record<string, unknown>;
  try {
    exports = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new AllocError('UnknownBackend', `the backend module ${file} could not be loaded: ${message}`);
  }
  return registerExports(url, file, exports);
}

/** Registers and trusts the descriptors a module at `url` (`file`, for messages) exports. */
function registerExports(url: string, file: string, exports: Record<string, unknown>): AnyBackendDescriptor[] {
  // One descriptor exported under two names (a named and the default export) counts once.
  const descriptors = [...new Set(Object.values(exports).filter(isBackendDescriptor))];
  if (descriptors.length === 0) {
    throw new AllocError(
      'UnknownBackend',
      `the backend module ${file} exports no backend descriptor (an object with name, moduleUrl, create and normalizeOptions, as defineBackend makes)`,
    );
  }
  trustBackendModule(url);
  for (const descriptor of descriptors) {
    registerBackend(descriptor);
    trustBackendModule(descriptor.moduleUrl);
  }
  return descriptors;
}

/**
 * The URL of the file `specifier` names (see `loadBackendModule`), with symbolic links
 * resolved as Node resolves them, so that one module has one URL however it was named.
 * @throws AllocError `UnknownBackend` when it names no file and no installed package
 */
async function resolveBackendModule(specifier: string, from: string): Promise<string> {
  const [{ existsSync, realpathSync, statSync }, { isAbsolute, resolve }, { fileURLToPath, pathToFileURL }] = await Promise.all([
    import('node:fs'),
    import('node:path'),
    import('node:url'),
  ]);
  const isFile = (path: string): boolean => existsSync(path) && statSync(path).isFile();
  const text = specifier.trim();
  if (text === '') throw new AllocError('UnknownBackend', 'a backend module is a path or a package name; the name is empty');
  let file: string | undefined;
  if (text.startsWith('file:')) {
    try {
      file = fileURLToPath(text);
    } catch (error) {
      throw new AllocError('UnknownBackend', `the backend module URL ${JSON.stringify(text)} is not a file URL: ${(error as Error).message}`);
    }
  } else if (isAbsolute(text) || /^\.\.?([\\/]|$)/.test(text) || isFile(resolve(from, text))) {
    file = resolve(from, text);
  } else if (/^[a-z][a-z0-9+.-]*:/i.test(text) && !/^[a-z]:[\\/]/i.test(text)) {
    // data:, http: and the like: attach would refuse them too (backend-registry.ts).
    throw new AllocError('UnknownBackend', `the backend module ${JSON.stringify(text)} is neither a file nor a package name`);
  }
  if (file !== undefined) {
    if (!isFile(file)) throw new AllocError('UnknownBackend', `there is no backend module file ${file}`);
    return pathToFileURL(realpathSync(file)).href;
  }
  const found = await resolvePackageModule(text, from);
  if (found === undefined) {
    throw new AllocError(
      'UnknownBackend',
      `there is no file ${resolve(from, text)}, and no package '${packageNameOf(text)}' is installed in ${resolve(from)} or a directory above it`,
    );
  }
  return pathToFileURL(realpathSync(found)).href;
}

/** A package specifier's package name: `@scope/name` or `name`, without the subpath. */
function packageNameOf(specifier: string): string {
  const parts = specifier.split('/');
  return parts.slice(0, specifier.startsWith('@') ? 2 : 1).join('/');
}

/**
 * The file `import(specifier)` would load in a module of `from`, or undefined when no such
 * package is installed there or above. The `node_modules` folders searched are the ones
 * Node's own resolution lists for `from`.
 * @throws AllocError `UnknownBackend` when the package is there but exports no such module
 */
async function resolvePackageModule(specifier: string, from: string): Promise<string | undefined> {
  const [{ existsSync, readFileSync, statSync }, { join, resolve }, { createRequire }] = await Promise.all([
    import('node:fs'),
    import('node:path'),
    import('node:module'),
  ]);
  const name = packageNameOf(specifier);
  const subpath = `.${specifier.slice(name.length)}`;
  const searched = createRequire(join(resolve(from), 'package.json')).resolve.paths(specifier) ?? [];
  const directory = searched.map((folder) => join(folder, name)).find((candidate) => existsSync(join(candidate, 'package.json')));
  if (directory === undefined) return undefined;
  let manifest: { exports?: unknown; main?: unknown };
  try {
    manifest = JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as { exports?: unknown; main?: unknown };
  } catch (error) {
    throw new AllocError('UnknownBackend', `${join(directory, 'package.json')} cannot be read: ${(error as Error).message}`);
  }
  const isFile = (path: string): boolean => existsSync(path) && statSync(path).isFile();
  if (manifest.exports !== undefined && manifest.exports !== null) {
    const target = exportTarget(manifest.exports, subpath);
    if (target === undefined || !target.startsWith('./') || !isFile(join(directory, target))) {
      throw new AllocError('UnknownBackend', `package '${name}' (${directory}) exports no module '${subpath}' for import`);
    }
    return join(directory, target);
  }
  // No exports: the main file, or the subpath as a file, each also with .js or /index.js.
  const base = subpath === '.' ? (typeof manifest.main === 'string' ? manifest.main : 'index.js') : subpath;
  const file = [base, `${base}.js`, join(base, 'index.js')].map((candidate) => join(directory, candidate)).find(isFile);
  if (file === undefined) throw new AllocError('UnknownBackend', `package '${name}' (${directory}) has no file '${base}'`);
  return file;
}

/** The export conditions `import` matches in a Node process (besides any `--conditions`). */
const IMPORT_CONDITIONS = ['node', 'import', 'default'];

/**
 * The target that a package's `exports` gives `subpath` (`.` or `./name`) under the import
 * conditions, with a `*` pattern's match filled in; undefined when it gives none.
 */
function exportTarget(exports: unknown, subpath: string): string | undefined {
  const isSubpathMap = typeof exports === 'object' && exports !== null && !Array.isArray(exports) && Object.keys(exports).some((key) => key.startsWith('.'));
  // A string, an array or an object of conditions is what `.` exports.
  if (!isSubpathMap) return subpath === '.' ? conditionalTarget(exports, '') : undefined;
  const map = exports as Record<string, unknown>;
  if (Object.hasOwn(map, subpath)) return conditionalTarget(map[subpath], '');
  // Patterns such as "./plugins/*": the one with the longest part before the star wins.
  let best: { key: string; match: string } | undefined;
  for (const key of Object.keys(map)) {
    const star = key.indexOf('*');
    if (star < 0) continue;
    const [prefix, suffix] = [key.slice(0, star), key.slice(star + 1)];
    if (subpath.length < key.length - 1 || !subpath.startsWith(prefix) || !subpath.endsWith(suffix)) continue;
    if (best === undefined || prefix.length > best.key.indexOf('*')) best = { key, match: subpath.slice(prefix.length, subpath.length - suffix.length) };
  }
  return best === undefined ? undefined : conditionalTarget(map[best.key], best.match);
}

/** The first target of `target` (a path, a list of fallbacks or an object of conditions) that the import conditions select. */
function conditionalTarget(target: unknown, match: string): string | undefined {
  if (typeof target === 'string') return target.replaceAll('*', match);
  if (Array.isArray(target)) {
    for (const option of target) {
      const found = conditionalTarget(option, match);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (typeof target !== 'object' || target === null) return undefined;
  const conditions = [...IMPORT_CONDITIONS, ...userConditions()];
  for (const [condition, value] of Object.entries(target)) {
    if (!conditions.includes(condition)) continue;
    const found = conditionalTarget(value, match);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The conditions this process was started with (`--conditions=heaplab-source`, `-C heaplab-source`), which `import` also matches. */
function userConditions(): string[] {
  const conditions: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i]!;
    const inline = /^(?:--conditions|-C)=(.+)$/.exec(argument);
    if (inline !== null) conditions.push(inline[1]!);
    else if ((argument === '--conditions' || argument === '-C') && i + 1 < argv.length) conditions.push(argv[++i]!);
  }
  return conditions;
}
