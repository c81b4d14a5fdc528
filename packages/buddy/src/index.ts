/**
 * @heaplab/buddy: a binary buddy allocator over heaplab's shared heap. Power-of-two blocks
 * from 16 bytes to 1 GiB, aligned to their size; per-order doubly linked free lists, so a
 * buddy leaves its list in constant time; an order map per pool, so `free` needs no size and
 * refuses bad addresses. Importing this module registers the `buddy` backend:
 *
 * ```ts
 * import '@heaplab/buddy';
 * const heap = GlobalAllocator.create({ backend: 'buddy' });
 * ```
 *
 * `BuddyPageAllocator` serves whole pages from the same heap (core's `PageAllocator`).
 */

import { registerBackend } from '@heaplab/core';
import { defineBackend } from '@heaplab/core/backend';

import { BuddyAllocator } from './buddy.js';
import { STATE_BYTES } from './layout.js';
import { BUDDY_OPTIONS, type BuddyOptions } from './options.js';

/**
 * The buddy backend's descriptor: core stores `name` and `moduleUrl` in the heap, so a
 * worker that attaches imports this module and creates its own instance over the shared
 * state. `create` @throws AllocError `InvalidParam` when the state area is too small.
 */
export const buddyBackend = defineBackend<BuddyOptions, BuddyAllocator>({
  name: 'buddy',
  summary: 'binary buddy: power-of-two blocks, O(1) buddy removal from doubly linked lists, address-indexed order map',
  moduleUrl: import.meta.url,
  concurrency: 'locked',
  options: BUDDY_OPTIONS,
  stateBytes: STATE_BYTES,
  create: (context) => new BuddyAllocator(context),
});

registerBackend(buddyBackend);

export { BuddyBlocks } from './blocks.js';
export { BuddyAllocator } from './buddy.js';
export type { BuddyOptions } from './options.js';
export { MAX_BLOCK_BYTES, MAX_ORDER, MIN_BLOCK_BYTES, MIN_ORDER, PAGE_ORDER } from './orders.js';
export { BuddyPageAllocator } from './page-allocator.js';
/** Bytes of control state a buddy heap needs, for a layer (slab) that embeds one in its own state. */
export { STATE_BYTES as BUDDY_STATE_BYTES } from './layout.js';
