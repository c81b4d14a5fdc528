/**
 * @heaplab/mimalloc: mimalloc's design (v1, 4 MiB segments) over heaplab's shared heap.
 * Importing this module registers the backend as `mimalloc`, so
 * `GlobalAllocator.create({ backend: 'mimalloc' })` works; `mimalloc:secure=true` selects
 * secure mode.
 */

import { registerBackend } from '@heaplab/core';

import { mimallocBackend } from './backend.js';

registerBackend(mimallocBackend);

export { MimallocBackend, mimallocBackend } from './backend.js';
export { collect, heapReport, mimallocOf, registerDeferredFree, setDelayedFreeStall, setStepHook, stallOn, statsJson, statsTable } from './api.js';
export type { DeferredFree, MiStep } from './context.js';
export { MIMALLOC_OPTIONS, type MimallocOptions } from './options.js';
export type { BinReport, MimallocReport, ThreadReport } from './stats.js';
export { BIN_BLOCK_SIZE, BIN_MAX, binOfSize, LARGE_OBJ_SIZE_MAX } from './size-classes.js';
