/**
 * The names this backend's errors carry, and the checker that builds them. Kept out of
 * layout.ts, which must import nothing at run time so that esbuild inlines its offsets (see
 * the import there).
 */

import { HeapChecker } from '@heaplab/core/backend';

/** Names the heap in every `HeapCorrupted` and `NotAllocated` this backend raises. */
export const HEAP_NAME = 'tlsf heap';

/** Builds the errors for broken invariants (off the hot paths) and bounds check walks. */
export const checker = new HeapChecker(HEAP_NAME);
