/**
 * Core's thread cache in front of slab, killed between its steps: a refill here is one of
 * slab's runs (`allocateRun`), so a death at 'refilled-one' stops a run between two blocks,
 * holding the heap lock, and recovery repairs slab before the reaper gives the cache back.
 */

import { describeCacheDeaths } from '@heaplab/test-kit';

import { slabBackend } from '../src/index.js';

describeCacheDeaths({ label: 'slab', backend: slabBackend });
describeCacheDeaths({ label: 'slab (2 arenas)', backend: slabBackend, options: { arenas: 2 } });
