/**
 * The slab backend's options: one, the empty slabs each class keeps. Listed once, as specs;
 * core checks them (`defineBackend` in `@heaplab/core/backend`).
 */

import type { BackendOptionSpec } from '@heaplab/core/backend';

/** The slab backend's normalised options. */
export interface SlabOptions {
  /**
   * Empty slabs each size class keeps for reuse; a class's further empty slabs go back to
   * the page layer at once. Cached ones go back too when a request would otherwise fail.
   */
  emptySlabs: number;
}

/** Default `emptySlabs`: one, so a class that empties and refills a slab does not thrash. */
export const DEFAULT_EMPTY_SLABS = 1;
/** The most `emptySlabs` can be. */
export const MAX_EMPTY_SLABS = 64;

export const SLAB_OPTIONS: readonly BackendOptionSpec[] = [
  {
    name: 'emptySlabs',
    description: 'empty slabs each size class keeps for reuse; more go back to the page layer, ' + 'and all go back when a request would otherwise fail',
    kind: 'integer',
    min: 0,
    max: MAX_EMPTY_SLABS,
    default: DEFAULT_EMPTY_SLABS,
  },
];
