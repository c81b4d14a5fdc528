/**
 * What a benchmark row measures: a heaplab backend, carrying its parsed and normalized
 * `BackendSpec`, or one of the baselines that place the backends: `system` (V8's own
 * allocation, what a JS program does without heaplab), `@thi.ng/malloc` (the npm allocator
 * over an ArrayBuffer), `bump` (the speed of light: a pointer that never frees) and the
 * `native` family (a workload's C port against glibc's malloc, or mimalloc, jemalloc or
 * tcmalloc preloaded: see native-allocators.ts).
 *
 * A contender is plain data: it travels to the process of an isolated row as it is.
 */

import type { BackendSpec } from '@heaplab/core';

import { NATIVE_ALLOCATORS, type NativeAllocatorName, nativeLabel } from './native-allocators.js';

/** A heaplab backend. */
export interface BackendContender {
  readonly kind: 'heaplab';
  /** Row label: the spec as the user gave it (`basic:strategy=best-fit`), or the name. */
  readonly label: string;
  /** The backend's name and its options, normalized by its descriptor (defaults filled in). */
  readonly spec: BackendSpec;
}

/** A baseline in this process: no heaplab heap, the allocator of its `kind`. */
export interface BaselineContender {
  readonly kind: 'system' | 'thing' | 'bump';
  readonly label: string;
}

/** A workload's C port run as a program of its own against a C allocator. */
export interface NativeContender {
  readonly kind: 'native';
  /** `native glibc 2.36`, `native mimalloc 2.0.9`. */
  readonly label: string;
  readonly allocator: NativeAllocatorName;
}

/** One row's allocator. */
export type Contender = BackendContender | BaselineContender | NativeContender;

/** The kinds of rows. */
export type ContenderKind = Contender['kind'];

/**
 * Baseline names as `--baselines` takes them, in table order. `native` is the whole family
 * (one row per C allocator, a missing library's row saying what to install); `native:glibc`
 * and the others name one.
 */
export const BASELINE_NAMES = ['system', 'thi.ng', 'bump', 'native', ...NATIVE_ALLOCATORS.map((name) => `native:${name}` as const)] as const;

/** One of `BASELINE_NAMES`. */
export type BaselineName = (typeof BASELINE_NAMES)[number];

/** The baselines `--baselines all` means: the native family once, not each member again. */
export const ALL_BASELINES: readonly BaselineName[] = ['system', 'thi.ng', 'bump', 'native'];

/** The rows of a baseline (the native family has one per C allocator). */
export function baselineContenders(name: BaselineName): Contender[] {
  switch (name) {
    case 'system':
      return [{ kind: 'system', label: 'system' }];
    case 'thi.ng':
      return [{ kind: 'thing', label: '@thi.ng/malloc' }];
    case 'bump':
      return [{ kind: 'bump', label: 'bump (speed of light)' }];
    case 'native':
      return NATIVE_ALLOCATORS.map(nativeContender);
    default:
      return [nativeContender(name.slice('native:'.length) as NativeAllocatorName)];
  }
}

/** The row of one C allocator. */
export function nativeContender(allocator: NativeAllocatorName): NativeContender {
  return { kind: 'native', label: nativeLabel(allocator), allocator };
}

/** The one row of a single-row baseline (every baseline but the native family). */
export function baselineContender(name: Exclude<BaselineName, 'native'>): Contender {
  return baselineContenders(name)[0]!;
}

/**
 * A spec as text, `name` or `name:key=value,key=value`: how a row is labelled and how the
 * command line takes it.
 */
export function formatBackendSpec(spec: BackendSpec): string {
  const options = Object.entries(spec.options).map(([key, value]) => `${key}=${String(value)}`);
  return options.length === 0 ? spec.name : `${spec.name}:${options.join(',')}`;
}
