/**
 * @heaplab/slab: slab caches for 36 size classes from 8 bytes to 8 KiB over core's bitmap
 * page allocator; larger and over-aligned requests are page runs. Importing this module
 * registers the `slab` backend, so `GlobalAllocator.create({ backend: 'slab' })` works, and
 * a worker that attaches to a slab heap imports it by itself from `moduleUrl`.
 */

import { registerBackend } from '@heaplab/core';
import type { Backend, BackendContext, BackendDescriptor } from '@heaplab/core/backend';

import { SlabAllocator } from './slab.js';
import { STATE_BYTES } from './layout.js';
import { normalizeSlabOptions, SLAB_OPTION_SPECS, type SlabOptions } from './options.js';

export { SlabAllocator } from './slab.js';
export {
  alignedClassOf,
  CLASS_COUNT,
  CLASS_OBJECTS,
  CLASS_PAGES,
  CLASS_SIZE,
  classOf,
  MAX_CLASS_BYTES,
} from './size-classes.js';
export { DEFAULT_EMPTY_SLABS, MAX_EMPTY_SLABS, normalizeSlabOptions, type SlabOptions } from './options.js';

/**
 * The slab backend's descriptor. `normalizeOptions` @throws AllocError `InvalidParam` for an
 * unknown option or a bad `emptySlabs`; `create` @throws AllocError `InvalidParam` when the
 * state area or the arena does not suit the backend.
 */
export const slabBackend: BackendDescriptor<SlabOptions> = {
  name: 'slab',
  summary: 'slab caches for 36 size classes (8 B to 8 KiB) over a bitmap page allocator; larger blocks are page runs',
  moduleUrl: import.meta.url,
  concurrency: 'locked',
  options: SLAB_OPTION_SPECS,
  stateBytes: STATE_BYTES,
  normalizeOptions: normalizeSlabOptions,
  create(context: BackendContext, options: SlabOptions): Backend {
    return new SlabAllocator(context, options);
  },
};

registerBackend(slabBackend);
