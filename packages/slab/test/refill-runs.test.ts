import { describeRefillRuns } from '@heaplab/test-kit';

import { slabBackend } from '../src/index.js';

describeRefillRuns({ label: 'slab', descriptor: slabBackend });
// No cached empty slabs: a run that finds no free group in a partial slab takes new pages.
describeRefillRuns({ label: 'slab (emptySlabs=0)', descriptor: slabBackend, options: { emptySlabs: 0 } });
// Checked mode: a run verifies the slab it carves from and each object's alignment code.
describeRefillRuns({ label: 'slab (checked)', descriptor: slabBackend, checked: true });
