import { describeMultiWorker } from '@heaplab/test-kit';

import { slabBackend } from '../src/index.js';

describeMultiWorker({ label: 'slab', backend: slabBackend }, { workerCounts: [1, 2, 4] });
describeMultiWorker({ label: 'slab (2 arenas)', backend: slabBackend, options: { arenas: 2 } }, { workerCounts: [2, 4] });
