/**
 * The buddy backend's own options: it has none. Its block sizes follow from the heap (16 bytes
 * up to the largest aligned power of two a pool holds) and its placement is fixed (the
 * smallest free block that fits, split down), so there is nothing to choose. `defineBackend`
 * (`@heaplab/core/backend`) adds the `tcache` option core gives every locked backend and
 * refuses any other.
 */

import type { BackendOptionSpec } from '@heaplab/core/backend';

/** The buddy backend's normalised options: always empty. */
export type BuddyOptions = Record<string, never>;

export const BUDDY_OPTIONS: readonly BackendOptionSpec[] = [];
