/**
 * The buddy backend's options: it has none. Its block sizes follow from the heap (16 bytes
 * up to the largest aligned power of two a pool holds) and its placement is fixed (the
 * smallest free block that fits, split down), so there is nothing to choose.
 */

import { AllocError } from '@heaplab/core';

/** The buddy backend's normalised options: always empty. */
export type BuddyOptions = Record<string, never>;

/**
 * Checks the buddy backend's options, of which there are none.
 * @throws AllocError `InvalidParam` for anything but an empty object, naming the first
 *   unknown option
 */
export function normalizeBuddyOptions(options: Record<string, unknown>): BuddyOptions {
  if (typeof options !== 'object' || options === null) {
    throw new AllocError('InvalidParam', `buddy backend options must be an object; got ${String(options)}`);
  }
  const [unknown] = Object.keys(options);
  if (unknown !== undefined) {
    throw new AllocError('InvalidParam', `buddy backend has no option '${unknown}'; valid options: none (it takes no options)`);
  }
  return {};
}
