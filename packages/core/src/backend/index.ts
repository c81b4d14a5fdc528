/**
 * `@heaplab/core/backend`: what a backend implementer needs, and only that. The contract
 * (`Backend`, `BackendDescriptor`, `BackendContext`), and the kit that writes the scaffolding
 * once: counters with one peak update, a view of core's pool table, the error factories, a
 * check helper with bounded walks, bit helpers, and option checking driven by the specs.
 *
 * Users of a heap import `@heaplab/core`; this entry point is for writing backends.
 */

import { ARENAS_OPTION, normalizeOptionsBySpec, THREAD_CACHE_OPTION } from './options.js';
import type { Backend, BackendDescriptor } from './contract.js';

export type {
  AnyBackendDescriptor,
  Backend,
  BackendConcurrency,
  BackendContext,
  BackendDescriptor,
  BackendOptionSpec,
  BackendRepair,
  BlockLayout,
  HeapDemand,
  RepairCause,
  ThreadSlots,
} from './contract.js';
export type { BackendStats, CheckReport, HeapMemory, HeapRegion, HeapRegionKind, StatsTable } from '../interfaces.js';
export { type CounterValues, StateCounters } from './counters.js';
export { minimumHeapBytes } from './heap-demand.js';
export { PoolView } from './pools.js';
export { heapCorrupted, notAllocated } from './errors.js';
export { HeapChecker } from './check.js';
export { highestBit, log2, lowestBit, popcount } from './bits.js';
export { freeMarker } from './free-marker.js';
export { ARENAS_OPTION, describeOptionValues, normalizeOptionsBySpec, type OptionValue, THREAD_CACHE_OPTION } from './options.js';
export { AllocError, hex } from '../errors.js';
export { alignDown, alignUp, isPowerOfTwo, MAX_ALIGN, MIN_ALIGN, PAGE_SIZE, RUN_LINE_BYTES } from '../sizes.js';
/** The largest request core's thread cache serves, so the largest size `allocateRun` is asked for. */
export { TC_MAX_REQUEST } from '../memory/heap-layout.js';
export { SharedMutex } from '../memory/mutex.js';
export { park, type ParkResult } from '../memory/park.js';
export { Qsbr, sequenceReached } from '../qsbr/qsbr.js';
export { BitmapPageAllocator } from '../pages/bitmap-page-allocator.js';
/** How many ranges the pool table holds (`init` plus every `addMemory`). */
export { MAX_POOLS } from '../memory/heap-layout.js';

/**
 * A descriptor whose `normalizeOptions` is made from its option specs, so a backend declares
 * its options once. `validate`, when given, checks rules between options after each one was
 * checked alone. A locked backend also gets core's `tcache` option (`THREAD_CACHE_OPTION`,
 * a thread cache in front of its lock) and `arenas` option (`ARENAS_OPTION`, several
 * instances of it) unless it lists an option of that name itself; its own code never sees
 * the cache, and each instance sees only its own arena.
 */
export function defineBackend<Options, Instance extends Backend>(
  descriptor: Omit<BackendDescriptor<Options, Instance>, 'normalizeOptions'> & {
    validate?: (options: Options) => void;
  },
): BackendDescriptor<Options, Instance> {
  const { validate, ...rest } = descriptor;
  const coreOptions = rest.concurrency === 'locked' ? [THREAD_CACHE_OPTION, ARENAS_OPTION] : [];
  const options = [...rest.options, ...coreOptions.filter((core) => !rest.options.some((spec) => spec.name === core.name))];
  return {
    ...rest,
    options,
    normalizeOptions(given: Record<string, unknown>): Options {
      const normalized = normalizeOptionsBySpec(rest.name, options, given) as Options;
      validate?.(normalized);
      return normalized;
    },
  };
}
