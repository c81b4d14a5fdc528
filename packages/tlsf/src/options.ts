/**
 * The TLSF backend's own options: it has none. Its parameters (granularity, SL_COUNT_LOG2,
 * FL_COUNT) are constants in layout.ts, each documented there, because the hot paths and the
 * control-state layout are built around them. `defineBackend` adds the one option core gives
 * every locked backend, `tcache` (the thread cache in front of it, docs/thread-cache.md), and
 * checks what a user gives against the list, so any other option is refused by name.
 */

import type { BackendOptionSpec } from '@heaplab/core/backend';

/** The TLSF backend's normalised options: always empty. */
export type TlsfOptions = Record<string, never>;

/** The option specs: none. */
export const TLSF_OPTIONS: readonly BackendOptionSpec[] = [];
