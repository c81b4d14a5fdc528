import { describeConformance } from '@heaplab/test-kit';

import { slabBackend } from '../src/index.js';

describeConformance({ label: 'slab', backend: slabBackend });
describeConformance({ label: 'slab (emptySlabs=0)', backend: slabBackend, options: { emptySlabs: 0 } });
describeConformance({ label: 'slab (2 arenas)', backend: slabBackend, options: { arenas: 2 } });
