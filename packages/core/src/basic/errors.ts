/**
 * The basic backend's error builder. Kept out of layout.ts, which must import nothing at run
 * time so that esbuild inlines its offsets (see the import there).
 */

import { heapCorrupted } from '../backend/errors.js';
import type { AllocError } from '../errors.js';

/** A broken structure of the basic heap. */
export function corrupt(message: string): AllocError {
  return heapCorrupted('basic heap', message);
}
