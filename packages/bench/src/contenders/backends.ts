/**
 * Finding the backends at run time, and turning what the user chose into rows. Each backend
 * package is imported inside try/catch: one that is missing, unbuilt or broken is reported as
 * not available and skipped, never taking the run down. Whatever registered itself is then in
 * core's registry, so a new backend package needs no change here beyond its name in
 * `BACKEND_PACKAGES`. Backends from outside heaplab come from modules the user names
 * (cli/backend-module-option.ts), which a child process is handed as URLs to load here.
 */

import {
  type BackendDescriptor,
  type BackendSpec,
  findBackend,
  GlobalAllocator,
  loadBackendModule,
  registeredBackends,
  type TraceRecorder,
} from '@heaplab/core';

import { type BackendContender, formatBackendSpec } from './contender.js';

/** The backend packages besides core (whose `basic` is always registered). */
export const BACKEND_PACKAGES: readonly string[] = ['@heaplab/tlsf', '@heaplab/buddy', '@heaplab/slab', '@heaplab/mimalloc'];

/** A backend package that could not be imported, and why. */
export interface UnavailableBackend {
  package: string;
  reason: string;
}

let discovery: Promise<UnavailableBackend[]> | undefined;

/**
 * Imports every backend package once, then loads the user's backend modules `backendModules`
 * (URLs, as `loadedBackendModules()` gives them to a child process; loading one again is a
 * no-op); resolves with the packages that could not be imported.
 * @throws AllocError from `loadBackendModule` when a user's module cannot be loaded: unlike
 *   a package of heaplab's, it was asked for by name
 */
export async function discoverBackends(backendModules: readonly string[] = []): Promise<UnavailableBackend[]> {
  discovery ??= importBackendPackages();
  const unavailable = await discovery;
  for (const url of backendModules) await loadBackendModule(url);
  return unavailable;
}

async function importBackendPackages(): Promise<UnavailableBackend[]> {
  const unavailable: UnavailableBackend[] = [];
  for (const name of BACKEND_PACKAGES) {
    try {
      // A variable specifier keeps the bundler from inlining the package: it must be
      // resolved when the bench runs, so a backend added later is found without a rebuild.
      await import(name);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // Node names the importing chunk too, which tells the user nothing.
      const reason = message
        .split('\n')[0]!
        .replace(/ imported from .*$/, '')
        .slice(0, 300);
      unavailable.push({ package: name, reason: /Cannot find module/.test(reason) ? `${reason} (is it built?)` : reason });
    }
  }
  return unavailable;
}

/** The registered backends, after discovery. */
export async function availableBackends(): Promise<{ backends: BackendDescriptor[]; unavailable: UnavailableBackend[] }> {
  const unavailable = await discoverBackends();
  return { backends: registeredBackends(), unavailable };
}

/** What the user chose, parsed (options as given): every registered backend, or one spec. */
export type BackendChoice = 'all' | BackendSpec;

/**
 * The rows for `choices`, in order, once `discoverBackends` has registered the backends: each
 * spec checked against its descriptor, which fills in the defaults of its options (this is
 * the one place options are normalized; the rows carry the result to every process and
 * worker). `all` stands for every registered backend with its default options and, with
 * `variants`, also with each other value of its `variant` options (basic's strategies,
 * mimalloc's secure mode), as `heaplab bench all` compares them; a row chosen twice runs once.
 * @throws AllocError `UnknownBackend` naming the valid backends, `InvalidParam` for bad options
 */
export function resolveBackendContenders(choices: readonly BackendChoice[], { variants = false } = {}): BackendContender[] {
  const rows = new Map<string, BackendContender>();
  const add = (descriptor: BackendDescriptor, options: Record<string, unknown>): void => {
    const label = formatBackendSpec({ name: descriptor.name, options });
    if (rows.has(label)) return;
    const normalized = descriptor.normalizeOptions(options) as Record<string, unknown>;
    rows.set(label, { kind: 'heaplab', label, spec: { name: descriptor.name, options: normalized } });
  };
  for (const choice of choices) {
    if (choice !== 'all') add(findBackend(choice.name), choice.options);
    else
      for (const descriptor of registeredBackends()) {
        add(descriptor, {});
        if (variants) for (const options of variantOptions(descriptor)) add(descriptor, options);
      }
  }
  return [...rows.values()];
}

/** One option set per non-default value of each of `descriptor`'s variant options. */
export function variantOptions(descriptor: BackendDescriptor): Record<string, unknown>[] {
  return descriptor.options.flatMap((spec): Record<string, unknown>[] => {
    if (spec.kind === 'integer' || spec.variant !== true) return [];
    const values: readonly (string | boolean)[] = spec.kind === 'boolean' ? [true, false] : spec.values;
    return values.filter((value) => value !== spec.default).map((value) => ({ [spec.name]: value }));
  });
}

/**
 * A fresh heap for a backend row. The descriptor and the normalized options go to `create`
 * as they are: no spec string is made or parsed again.
 * @throws AllocError `UnknownBackend` when the backend is not registered in this thread
 *   (call `discoverBackends` first), or from `GlobalAllocator.create`
 */
export function createBackendHeap(spec: BackendSpec, heapBytes: number, trace?: TraceRecorder): GlobalAllocator {
  return GlobalAllocator.create({ backend: findBackend(spec.name), options: spec.options, heapBytes, ...(trace === undefined ? {} : { trace }) });
}
