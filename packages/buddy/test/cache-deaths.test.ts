/**
 * Core's thread cache in front of buddy, killed between its steps: buddy refills a bin one
 * `allocate` at a time (it carves no runs: docs/thread-cache.md), so a death at 'refilled-one'
 * falls between two of them, holding the heap lock.
 */

import { describeCacheDeaths } from '@heaplab/test-kit';

import { buddyBackend } from '../src/index.js';

describeCacheDeaths({ label: 'buddy', backend: buddyBackend });
describeCacheDeaths({ label: 'buddy (2 arenas)', backend: buddyBackend, options: { arenas: 2 } });
