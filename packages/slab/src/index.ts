/**
 * @heaplab/slab: slab caches for 36 size classes from 8 bytes to 8 KiB over core's bitmap
 * page allocator; larger and over-aligned requests are page runs. Importing this module
 * registers the `slab` backend, so `GlobalAllocator.create({ backend: 'slab' })` works, and
 * a worker that attaches to a slab heap imports it by itself from `moduleUrl`.
 */

import { registerBackend } from '@heaplab/core';
import { defineBackend } from '@heaplab/core/backend';

import { STATE_BYTES } from './layout.js';
import { SLAB_OPTIONS, type SlabOptions } from './options.js';
import { SlabAllocator } from './slab.js';

/**
 * The slab backend's descriptor: core stores `name` and `moduleUrl` in the heap, so a worker
 * that attaches imports this module and creates its own instance over the shared state.
 * `create` @throws AllocError `InvalidParam` when the state area or the arena does not suit
 * the backend.
 */
export const slabBackend = defineBackend<SlabOptions, SlabAllocator>({
  name: 'slab',
  summary: 'slab caches for 36 size classes (8 B to 8 KiB) over a bitmap page allocator; larger blocks are page runs',
  moduleUrl: import.meta.url,
  concurrency: 'locked',
  options: SLAB_OPTIONS,
  stateBytes: STATE_BYTES,
  create: (context, options) => new SlabAllocator(context, options),
});

registerBackend(slabBackend);

export { DEFAULT_EMPTY_SLABS, MAX_EMPTY_SLABS, type SlabOptions } from './options.js';
export {
  alignedClassOf,
  CLASS_COUNT,
  CLASS_OBJECTS,
  CLASS_PAGES,
  CLASS_SIZE,
  classOf,
  MAX_CLASS_BYTES,
} from './size-classes.js';
export { SlabAllocator } from './slab.js';
