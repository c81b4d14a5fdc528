import { describeRefillRuns } from '@heaplab/test-kit';

import { MAX_CLASS_BYTES, slabBackend } from '../src/index.js';

// Slab carves runs of its classes only; the cache's larger sizes are page runs, one at a time.
const largestSize = MAX_CLASS_BYTES;
describeRefillRuns({ label: 'slab', descriptor: slabBackend, largestSize });
// No cached empty slabs: a run that finds no free group in a partial slab takes new pages.
describeRefillRuns({ label: 'slab (emptySlabs=0)', descriptor: slabBackend, options: { emptySlabs: 0 }, largestSize });
// Checked mode: a run verifies the slab it carves from and each object's alignment code.
describeRefillRuns({ label: 'slab (checked)', descriptor: slabBackend, checked: true, largestSize });
