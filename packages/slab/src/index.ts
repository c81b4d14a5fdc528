/**
 * @heaplab/slab: slab caches for 36 size classes from 8 bytes to 8 KiB over core's bitmap
 * page allocator; larger and over-aligned requests are page runs. Importing this module
 * registers the `slab` backend, so `GlobalAllocator.create({ backend: 'slab' })` works, and
 * a worker that attaches to a slab heap imports it by itself from `moduleUrl`.
 */

import { type Backend, type BackendContext, type BackendDescriptor, registerBackend } from '@heaplab/core';

import { SlabAllocator } from './slab-allocator.js';
import { STATE_BYTES } from './slab-layout.js';
import { normalizeSlabOptions, SLAB_OPTION_SPECS, type SlabOptions } from './slab-options.js';

export { SlabAllocator } from './slab-allocator.js';
export {
  alignedClassOf,
  CLASS_COUNT,
  CLASS_OBJECTS,
  CLASS_PAGES,
  CLASS_SIZE,
  classOf,
  MAX_CLASS_BYTES,
} from './size-classes.js';
export { DEFAULT_EMPTY_SLABS, MAX_EMPTY_SLABS, normalizeSlabOptions, type SlabOptions } from './slab-options.js';

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
