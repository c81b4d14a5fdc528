import { describeMultiWorker } from '@heaplab/test-kit';

import { slabBackend } from '../src/index.js';

describeMultiWorker({ label: 'slab', backend: slabBackend }, { workerCounts: [1, 2, 4] });
