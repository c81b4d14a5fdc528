/**
 * @heaplab/tlsf: a two-level segregated fit allocator over the shared heap. Importing this
 * module registers the backend, so `GlobalAllocator.create({ backend: 'tlsf' })` works; a
 * worker that attaches to a TLSF heap imports it by itself through `moduleUrl`.
 */

import { registerBackend } from '@heaplab/core';
import { defineBackend } from '@heaplab/core/backend';

import { STATE_BYTES } from './layout.js';
import { TLSF_OPTIONS, type TlsfOptions } from './options.js';
import { TlsfAllocator } from './tlsf.js';

/**
 * The TLSF backend's descriptor. `normalizeOptions` @throws AllocError `InvalidParam` for
 * any option (there are none); `create` @throws AllocError `InvalidParam` when the state
 * area is too small.
 */
export const tlsfBackend = defineBackend<TlsfOptions, TlsfAllocator>({
  name: 'tlsf',
  summary: 'two-level segregated fit: O(1) good-fit search with bitmaps, boundary tags, immediate coalescing',
  moduleUrl: import.meta.url,
  concurrency: 'locked',
  options: TLSF_OPTIONS,
  stateBytes: STATE_BYTES,
  create: (context, options) => new TlsfAllocator(context, options),
});

registerBackend(tlsfBackend);

export { TLSF_OPTIONS, type TlsfOptions } from './options.js';
export { TlsfAllocator } from './tlsf.js';
export { goodFitSearchSize, listMinSize, listOf } from './size-classes.js';
export { FL_COUNT, GRANULARITY, MAX_SLACK, MIN_BLOCK_BYTES, SL_COUNT_LOG2, STATE_BYTES } from './layout.js';
