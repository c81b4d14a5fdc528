import { describeMultiWorker } from '@heaplab/core/test-kit';

import { mimallocBackend } from '../src/index.js';

describeMultiWorker({ label: 'mimalloc', backend: mimallocBackend }, { workerCounts: [1, 2, 4] });
