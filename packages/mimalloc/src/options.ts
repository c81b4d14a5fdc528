/**
 * The mimalloc backend's options and their normalisation.
 */

import { AllocError } from '@heaplab/core';

/** The mimalloc backend's normalised options. */
export interface MimallocOptions {
  /**
   * Secure mode (mimalloc's `MI_SECURE`): shuffled initial free lists, free-list links
   * encoded with per-page keys, corrupted free lists and blocks written after free reported
   * as `HeapCorrupted`. Double frees are refused in every mode.
   */
  secure: boolean;
}

/** Option names, in the order `heaplab backends` lists them. */
export const MIMALLOC_OPTION_NAMES = ['secure'] as const;

/**
 * Checks options and fills in defaults. `secure` accepts a boolean or the strings
 * `true`/`false` (as a spec string such as `mimalloc:secure=true` gives it).
 * @throws AllocError `InvalidParam` for an unknown option or a bad value, naming the valid ones
 */
export function normalizeMimallocOptions(options: Record<string, unknown>): MimallocOptions {
  if (typeof options !== 'object' || options === null) {
    throw new AllocError('InvalidParam', `mimalloc backend options must be an object; got ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!(MIMALLOC_OPTION_NAMES as readonly string[]).includes(key)) {
      throw new AllocError(
        'InvalidParam',
        `mimalloc backend has no option '${key}'; valid options: ${MIMALLOC_OPTION_NAMES.join(', ')}`,
      );
    }
  }
  const secure = options['secure'] ?? false;
  if (secure === true || secure === 'true') return { secure: true };
  if (secure === false || secure === 'false') return { secure: false };
  throw new AllocError(
    'InvalidParam',
    `mimalloc backend option secure ${JSON.stringify(secure) ?? String(secure)} is not valid; valid values: true, false`,
  );
}
