/**
 * The slab backend's options: what `normalizeOptions` accepts, and the defaults it fills in.
 */

import { AllocError } from '@heaplab/core';
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

/** The options as `heaplab backends` lists them. */
export const SLAB_OPTION_SPECS: readonly BackendOptionSpec[] = [
  {
    name: 'emptySlabs',
    description:
      `empty slabs each size class keeps for reuse (0 to ${MAX_EMPTY_SLABS}); more go back to the page layer, ` +
      'and all go back when a request would otherwise fail',
    kind: 'integer',
    min: 0,
    max: MAX_EMPTY_SLABS,
    default: DEFAULT_EMPTY_SLABS,
  },
];

const OPTION_NAMES = SLAB_OPTION_SPECS.map((spec) => spec.name);

/**
 * Checks the slab backend's options and fills in defaults.
 * @throws AllocError `InvalidParam` for options that are not an object, an unknown option
 *   (naming the valid ones), or an `emptySlabs` that is not an integer from 0 to
 *   `MAX_EMPTY_SLABS`
 */
export function normalizeSlabOptions(options: Record<string, unknown>): SlabOptions {
  if (typeof options !== 'object' || options === null) {
    throw new AllocError('InvalidParam', `slab backend options must be an object; got ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.includes(key)) {
      throw new AllocError(
        'InvalidParam',
        `slab backend has no option '${key}'; valid options: ${OPTION_NAMES.join(', ')}`,
      );
    }
  }
  const emptySlabs = options['emptySlabs'] ?? DEFAULT_EMPTY_SLABS;
  if (typeof emptySlabs !== 'number' || !Number.isInteger(emptySlabs) || emptySlabs < 0 || emptySlabs > MAX_EMPTY_SLABS) {
    throw new AllocError(
      'InvalidParam',
      `slab backend option emptySlabs ${JSON.stringify(emptySlabs) ?? String(emptySlabs)} is not valid; ` +
        `valid values: an integer from 0 to ${MAX_EMPTY_SLABS}`,
    );
  }
  return { emptySlabs };
}
