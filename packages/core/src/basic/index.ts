/**
 * The basic backend: a boundary-tagged, coalescing, address-ordered free list with first-,
 * best- or worst-fit placement. Its descriptor: core stores `moduleUrl` and `name` in the
 * heap so worker threads import this module and `create` their own instance over the shared
 * state.
 */

import { defineBackend } from '../backend/index.js';
import { BasicAllocator } from './basic.js';
import { STATE_BYTES } from './layout.js';
import { BASIC_OPTIONS, type BasicOptions } from './options.js';

export { BasicAllocator } from './basic.js';
export { BASIC_STRATEGIES, type BasicOptions, type BasicStrategy } from './options.js';

export const basicBackend = defineBackend<BasicOptions, BasicAllocator>({
  name: 'basic',
  summary: 'boundary-tagged coalescing free list, address-ordered, first/best/worst fit',
  moduleUrl: import.meta.url,
  concurrency: 'locked',
  options: BASIC_OPTIONS,
  stateBytes: STATE_BYTES,
  create: (context, options) => new BasicAllocator(context, options),
});
