/**
 * Core's thread cache in front of tlsf, killed between its steps: a refill here is one of
 * tlsf's runs (`allocateRun`), so a death at 'refilled-one' stops a run between two blocks,
 * holding the heap lock, and recovery repairs tlsf before the reaper gives the cache back.
 */

import { describeCacheDeaths } from '@heaplab/test-kit';

import { tlsfBackend } from '../src/index.js';

describeCacheDeaths({ label: 'tlsf', backend: tlsfBackend });
describeCacheDeaths({ label: 'tlsf (2 arenas)', backend: tlsfBackend, options: { arenas: 2 } });
