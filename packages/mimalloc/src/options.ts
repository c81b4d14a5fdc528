/**
 * The mimalloc backend's options, listed once as specs: core checks what a user gives
 * against them and fills in the defaults (`defineBackend` in `@heaplab/core/backend`).
 */

import type { BackendOptionSpec } from '@heaplab/core/backend';

/** The mimalloc backend's normalised options. */
export interface MimallocOptions {
  /**
   * Secure mode (mimalloc's `MI_SECURE`): shuffled initial free lists, free-list links
   * encoded with per-page keys, corrupted free lists and blocks written after free reported
   * as `HeapCorrupted`. Double frees are refused in every mode.
   */
  secure: boolean;
  /**
   * Delayed page reuse (CPython's QSBR over mimalloc): a page that becomes empty is held
   * with a QSBR goal, usable only for its own size class, and given back only once every
   * thread has passed a quiescent point after it emptied (see `layout.ts`).
   */
  delayedPageReuse: boolean;
  /**
   * Per-bin counters (mimalloc's `MI_STAT`): every allocation and free is counted in its
   * thread's heap record, for the cumulative and peak columns of `classStats`' bins table.
   * Off by default: counting on the fast paths cost more than the bench's noise, so with
   * the option on, malloc and free take their slow variants, which count.
   */
  stats: boolean;
}

/** The specs, in the order `heaplab backends` lists them. */
export const MIMALLOC_OPTIONS: readonly BackendOptionSpec[] = [
  {
    name: 'secure',
    description: 'secure mode: shuffled free lists, encoded links with per-page keys, corruption reported',
    kind: 'boolean',
    default: false,
    variant: true,
  },
  {
    name: 'delayedPageReuse',
    description: 'delayed page reuse: an emptied page keeps its size class until every thread passed a QSBR quiescent point',
    kind: 'boolean',
    default: false,
  },
  {
    name: 'stats',
    description: "per-bin counters (as mimalloc's MI_STAT): allocations, frees and peaks per size class, on malloc's and free's slow variants",
    kind: 'boolean',
    default: false,
  },
];
