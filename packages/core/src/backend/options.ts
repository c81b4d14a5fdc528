/**
 * Backend options, checked from their specs: a backend lists its options (`BackendOptionSpec`:
 * kind, default, bounds or values) and this turns what a user gave (an object, or the
 * strings of a spec such as `basic:strategy=best-fit`) into a complete, checked options
 * object. No backend writes its own normalizer.
 */

import { AllocError, describeValue } from '../errors.js';
import type { BackendDescriptor, BackendOptionSpec } from './contract.js';
import { MAX_ARENAS } from '../memory/heap-layout.js';

/**
 * The option `defineBackend` gives every locked backend: a per-thread cache of small blocks in
 * front of it (tcache/thread-cache.ts). On by default; off to study the bare algorithm, or to
 * keep exact requested sizes (a cached block serves any request of its 8-byte class).
 */
export const THREAD_CACHE_OPTION: BackendOptionSpec = {
  name: 'tcache',
  description:
    'a per-thread cache of blocks up to 1024 bytes in front of the heap lock (bins refilled 512 bytes at a time under one lock hold); false for the bare algorithm and exact requested sizes',
  kind: 'boolean',
  default: true,
};

/**
 * The option `defineBackend` gives every locked backend besides `tcache`: how many instances
 * of it the heap runs, each over its own slice of the arena under its own heap lock
 * (docs/arenas.md). 1 by default, one heap as the algorithm describes it.
 */
export const ARENAS_OPTION: BackendOptionSpec = {
  name: 'arenas',
  description:
    "instances of the backend, each over its own slice of the arena with its own heap lock; a thread allocates from its own first (the largest block is one slice's); 1 for one heap",
  kind: 'integer',
  min: 1,
  max: MAX_ARENAS,
  default: 1,
};

/**
 * How many arenas a heap of `descriptor` with (normalised) `options` runs: core's `arenas`
 * option of a locked backend (arenas.ts), else 1. A backend that declares an option of that
 * name itself keeps it: `defineBackend` then gives it no `ARENAS_OPTION`, and it gets one
 * arena. (Core's option is told by its text as well as by identity, for a backend module
 * that brought its own copy of core.)
 */
// biome-ignore lint/suspicious/noExplicitAny: any descriptor, whatever its options type
export function arenaCountOf(descriptor: BackendDescriptor<any, any>, options: unknown): number {
  if (descriptor.concurrency !== 'locked') return 1;
  const core = descriptor.options.some(
    (spec) => spec === ARENAS_OPTION || (spec.name === ARENAS_OPTION.name && spec.description === ARENAS_OPTION.description),
  );
  return core ? ((options as Record<string, number>)['arenas'] ?? 1) : 1;
}

/** A normalised option value. */
export type OptionValue = boolean | number | string;

/**
 * Checks `options` against `specs` and fills in defaults.
 * @throws AllocError `InvalidParam` for something other than a plain object, an unknown
 *   option (naming the valid ones), or a value the spec does not allow (naming the valid ones)
 */
export function normalizeOptionsBySpec(backend: string, specs: readonly BackendOptionSpec[], options: unknown): Record<string, OptionValue> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new AllocError('InvalidParam', `${backend} backend options must be an object; got ${describeValue(options)}`);
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!specs.some((spec) => spec.name === key)) {
      const valid = specs.length === 0 ? 'none' : specs.map((spec) => `'${spec.name}'`).join(', ');
      throw new AllocError('InvalidParam', `${backend} backend has no option '${key}'; valid options: ${valid}`);
    }
  }
  const normalized: Record<string, OptionValue> = {};
  for (const spec of specs) {
    const value = given[spec.name];
    normalized[spec.name] = value === undefined ? spec.default : checkValue(backend, spec, value);
  }
  return normalized;
}

/** The valid values of an option, as messages and listings show them. */
export function describeOptionValues(spec: BackendOptionSpec): string {
  switch (spec.kind) {
    case 'boolean':
      return 'true, false';
    case 'integer':
      return `an integer from ${spec.min} to ${spec.max}`;
    case 'enum':
      return spec.values.join(', ');
  }
}

function checkValue(backend: string, spec: BackendOptionSpec, value: unknown): OptionValue {
  switch (spec.kind) {
    case 'boolean':
      if (value === true || value === 'true') return true;
      if (value === false || value === 'false') return false;
      break;
    case 'integer': {
      const number = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
      if (typeof number === 'number' && Number.isInteger(number) && number >= spec.min && number <= spec.max) return number;
      break;
    }
    case 'enum':
      if (typeof value === 'string' && spec.values.includes(value)) return value;
      break;
  }
  throw new AllocError(
    'InvalidParam',
    `${backend} backend option '${spec.name}' ${describeValue(value)} is not valid; valid values: ${describeOptionValues(spec)}`,
  );
}
