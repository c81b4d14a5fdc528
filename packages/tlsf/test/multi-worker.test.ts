import { describeMultiWorker } from '@heaplab/core/test-kit';

import { tlsfBackend } from '../src/index.js';

describeMultiWorker({ label: 'tlsf', backend: tlsfBackend }, { workerCounts: [1, 2, 4] });
