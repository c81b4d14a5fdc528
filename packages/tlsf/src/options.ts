/**
 * The TLSF backend's options. It has none: its parameters (granularity, SL_COUNT_LOG2,
 * FL_COUNT) are constants in layout.ts, each documented there, because the hot paths
 * and the control-state layout are built around them.
 */

import { AllocError } from '@heaplab/core';

/** The TLSF backend's normalised options: always empty. */
export type TlsfOptions = Record<string, never>;

/**
 * Checks the TLSF backend's options: only an empty object is valid.
 * @throws AllocError `InvalidParam` naming the first option given, or when `options` is
 *   not an object
 */
export function normalizeTlsfOptions(options: Record<string, unknown>): TlsfOptions {
  if (typeof options !== 'object' || options === null) {
    throw new AllocError('InvalidParam', `tlsf backend options must be an object; got ${String(options)}`);
  }
  const keys = Object.keys(options);
  if (keys.length > 0) {
    throw new AllocError(
      'InvalidParam',
      `tlsf backend has no option '${keys[0]}'; it takes no options (valid options: none)`,
    );
  }
  return {};
}
