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
  /**
   * Delayed page reuse (CPython's QSBR over mimalloc): a page that becomes empty is held
   * with a QSBR goal, usable only for its own size class, and given back only once every
   * thread has passed a quiescent point after it emptied (see `types.ts`).
   */
  delayedPageReuse: boolean;
}

/** Option names, in the order `heaplab backends` lists them. */
export const MIMALLOC_OPTION_NAMES = ['secure', 'delayedPageReuse'] as const;

/**
 * Checks options and fills in defaults. Each accepts a boolean or the strings `true`/`false`
 * (as a spec string such as `mimalloc:secure=true` gives it).
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
  return {
    secure: booleanOption(options, 'secure'),
    delayedPageReuse: booleanOption(options, 'delayedPageReuse'),
  };
}

/** A boolean option, default false. @throws AllocError `InvalidParam` for another value */
function booleanOption(options: Record<string, unknown>, name: (typeof MIMALLOC_OPTION_NAMES)[number]): boolean {
  const value = options[name] ?? false;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new AllocError(
    'InvalidParam',
    `mimalloc backend option ${name} ${JSON.stringify(value) ?? String(value)} is not valid; valid values: true, false`,
  );
}
