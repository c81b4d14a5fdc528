import { describeRefillRuns } from '@heaplab/test-kit';

import { slabBackend } from '../src/index.js';

describeRefillRuns({ label: 'slab', descriptor: slabBackend });
// No cached empty slabs: a run that finds no free group in a partial slab takes new pages.
describeRefillRuns({ label: 'slab (emptySlabs=0)', descriptor: slabBackend, options: { emptySlabs: 0 } });
