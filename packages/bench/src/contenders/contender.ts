/**
 * What a benchmark row measures: a heaplab backend (by spec, e.g. `basic:strategy=best-fit`)
 * or one of the baselines that place the backends: `system` (V8's own allocation, what a JS
 * program does without heaplab), `@thi.ng/malloc` (the npm allocator over an ArrayBuffer),
 * `bump` (the speed of light: a pointer that never frees) and `native` (the C library's
 * malloc running the C port of the same benchmark).
 */

/** The kinds of rows. */
export type ContenderKind = 'heaplab' | 'system' | 'thing' | 'bump' | 'native';

/** One row's allocator. */
export interface Contender {
  /** Row label: the backend spec, or the baseline's name. */
  readonly label: string;
  readonly kind: ContenderKind;
  /** For `heaplab`: the spec given to `GlobalAllocator.create`. */
  readonly backendSpec?: string;
}

/** Baseline names as `--baselines` takes them, in table order. */
export const BASELINE_NAMES = ['system', 'thi.ng', 'bump', 'native'] as const;

/** One of `BASELINE_NAMES`. */
export type BaselineName = (typeof BASELINE_NAMES)[number];

/** The row of a baseline. */
export function baselineContender(name: BaselineName): Contender {
  switch (name) {
    case 'system':
      return { label: 'system', kind: 'system' };
    case 'thi.ng':
      return { label: '@thi.ng/malloc', kind: 'thing' };
    case 'bump':
      return { label: 'bump (speed of light)', kind: 'bump' };
    case 'native':
      return { label: 'native (C malloc)', kind: 'native' };
  }
}

/** The row of a heaplab backend. */
export function backendContender(spec: string): Contender {
  return { label: spec, kind: 'heaplab', backendSpec: spec };
}

/** True for the rows whose figures place the others rather than compete. */
export function isBaseline(contender: Contender): boolean {
  return contender.kind !== 'heaplab';
}
