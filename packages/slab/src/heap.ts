/**
 * What check.ts, recover.ts and stats.ts read of a slab heap: its views, where its state
 * is, and the structures slab.ts builds over it. Declared apart from slab.ts (which imports
 * those three files and implements this), so they depend on the heap's parts and not on the
 * allocator, and the package has no import cycle.
 */

import type { BitmapPageAllocator, PoolView, StateCounters } from '@heaplab/core/backend';

import type { SlabCaches } from './caches.js';
import type { PageMap } from './page-map.js';

export interface SlabHeap {
  readonly u32: Uint32Array;
  readonly cookie: number;
  readonly arenaStart: number;
  readonly arenaEnd: number;
  readonly stateOffset: number;
  /** The `emptySlabs` option of this handle. */
  readonly emptySlabs: number;
  /** Word indexes of the control state's fields (layout.ts). */
  readonly sMagic: number;
  readonly sPageMap: number;
  readonly sPageMapPages: number;
  readonly sClasses: number;
  /** The page layer, its state in the control state at `ST_PAGE_ALLOCATOR`. */
  readonly pages: BitmapPageAllocator;
  readonly map: PageMap;
  readonly caches: SlabCaches;
  /** Core's counters of this heap. */
  readonly counters: StateCounters;
  /** Core's pool table: every range given by `init` and a finished `addMemory`. */
  readonly pools: PoolView;
}
