/**
 * What a benchmark row measures: a heaplab backend, carrying its parsed and normalized
 * `BackendSpec`, or one of the baselines that place the backends: `system` (V8's own
 * allocation, what a JS program does without heaplab), `@thi.ng/malloc` (the npm allocator
 * over an ArrayBuffer), `bump` (the speed of light: a pointer that never frees) and `native`
 * (the C library's malloc running the C port of bench-malloc-thread).
 *
 * A contender is plain data: it travels to the process of an isolated row as it is.
 */

import type { BackendSpec } from '@heaplab/core';

/** A heaplab backend. */
export interface BackendContender {
  readonly kind: 'heaplab';
  /** Row label: the spec as the user gave it (`basic:strategy=best-fit`), or the name. */
  readonly label: string;
  /** The backend's name and its options, normalized by its descriptor (defaults filled in). */
  readonly spec: BackendSpec;
}

/** A baseline: no heaplab heap, the allocator of its `kind`. */
export interface BaselineContender {
  readonly kind: 'system' | 'thing' | 'bump' | 'native';
  readonly label: string;
}

/** One row's allocator. */
export type Contender = BackendContender | BaselineContender;

/** The kinds of rows. */
export type ContenderKind = Contender['kind'];

/** Baseline names as `--baselines` takes them, in table order. */
export const BASELINE_NAMES = ['system', 'thi.ng', 'bump', 'native'] as const;

/** One of `BASELINE_NAMES`. */
export type BaselineName = (typeof BASELINE_NAMES)[number];

/** The row of a baseline. */
export function baselineContender(name: BaselineName): BaselineContender {
  switch (name) {
    case 'system':
      return { kind: 'system', label: 'system' };
    case 'thi.ng':
      return { kind: 'thing', label: '@thi.ng/malloc' };
    case 'bump':
      return { kind: 'bump', label: 'bump (speed of light)' };
    case 'native':
      return { kind: 'native', label: 'native (C malloc)' };
  }
}

/**
 * A spec as text, `name` or `name:key=value,key=value`: how a row is labelled and how the
 * command line takes it.
 */
export function formatBackendSpec(spec: BackendSpec): string {
  const options = Object.entries(spec.options).map(([key, value]) => `${key}=${String(value)}`);
  return options.length === 0 ? spec.name : `${spec.name}:${options.join(',')}`;
}
