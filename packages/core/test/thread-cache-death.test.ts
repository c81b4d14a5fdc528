/**
 * Core's thread cache killed between its steps, on core's basic backend (a refill of one
 * `allocate` at a time): the test kit's death suite, which tlsf and slab run over their
 * refill runs.
 */

import { describeCacheDeaths } from '@heaplab/test-kit';

describeCacheDeaths({ label: 'basic', backend: 'basic' });
describeCacheDeaths({ label: 'basic (2 arenas)', backend: 'basic', options: { arenas: 2 } });
