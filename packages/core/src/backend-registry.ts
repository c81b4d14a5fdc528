/**
 * How backends plug in. Core never imports a backend package: a package exports a
 * `BackendDescriptor` and registers it when imported. A heap stores its backend's name and
 * the URL of the module exporting the descriptor, so a worker that attaches finds the same
 * backend by importing that URL, even if it never imported the package itself.
 *
 * The registry is per JS realm (each worker has its own); it caches descriptors, it holds no
 * allocator state.
 */

import { AllocError } from './errors.js';
import type { BackendDescriptor } from './interfaces.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDescriptor = BackendDescriptor<any>;

const registry = new Map<string, AnyDescriptor>();

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
export function registerBackend(descriptor: AnyDescriptor): void {
  const known = registry.get(descriptor.name);
  if (known !== undefined && known !== descriptor && known.moduleUrl !== descriptor.moduleUrl) {
    throw new AllocError(
      'InvalidParam',
      `a different backend named '${descriptor.name}' is already registered (from ${known.moduleUrl})`,
    );
  }
  if (known === undefined) registry.set(descriptor.name, descriptor);
}

/** The backends registered in this thread, by name. */
export function registeredBackends(): AnyDescriptor[] {
  return [...registry.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The registered backend called `name`.
 * @throws AllocError `UnknownBackend` listing the valid names and how to add the missing one
 */
export function findBackend(name: string): AnyDescriptor {
  const descriptor = registry.get(name);
  if (descriptor !== undefined) return descriptor;
  const valid = [...registry.keys()].sort().join(', ');
  const pkg = BACKEND_PACKAGES[name];
  const hint = pkg !== undefined ? `; import '${pkg}' to register it` : '';
  throw new AllocError('UnknownBackend', `unknown backend '${name}' (valid: ${valid})${hint}`);
}

/** True when `value` has the shape of a `BackendDescriptor`. */
export function isBackendDescriptor(value: unknown): value is AnyDescriptor {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<AnyDescriptor>;
  return (
    typeof candidate.name === 'string' &&
    typeof candidate.moduleUrl === 'string' &&
    typeof candidate.create === 'function' &&
    typeof candidate.normalizeOptions === 'function'
  );
}

/**
 * Imports the module at `moduleUrl` and registers the descriptor named `name` that it
 * exports. This is how `attach` finds a heap's backend in a fresh worker.
 * @throws AllocError `UnknownBackend` when the module cannot be imported or exports no such
 *   descriptor
 */
export async function loadBackend(name: string, moduleUrl: string): Promise<AnyDescriptor> {
  const known = registry.get(name);
  if (known !== undefined) return known;
  let exports: Record<string, unknown>;
  try {
    exports = (await import(moduleUrl)) as Record<string, unknown>;
  } catch (error) {
    throw new AllocError(
      'UnknownBackend',
      `backend '${name}' could not be loaded from ${moduleUrl}: ${(error as Error).message}`,
    );
  }
  const descriptor = Object.values(exports).find(
    (value): value is AnyDescriptor => isBackendDescriptor(value) && value.name === name,
  );
  if (descriptor === undefined) {
    throw new AllocError('UnknownBackend', `${moduleUrl} exports no backend named '${name}'`);
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
  if (!/^[a-z][a-z0-9-]*$/.test(name)) {
    throw new AllocError(
      'InvalidParam',
      `backend spec '${spec}' must be a lowercase name, optionally followed by :key=value,...`,
    );
  }
  const options: Record<string, unknown> = {};
  if (rawOptions !== undefined && rawOptions.trim() !== '') {
    for (const pair of rawOptions.split(',')) {
      const [key, value] = splitOnce(pair, '=');
      if (value === undefined || key.trim() === '') {
        throw new AllocError('InvalidParam', `backend option '${pair}' in '${spec}' is not key=value`);
      }
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
