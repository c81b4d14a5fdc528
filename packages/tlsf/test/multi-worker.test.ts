import { describeMultiWorker } from '@heaplab/test-kit';

import { tlsfBackend } from '../src/index.js';

describeMultiWorker({ label: 'tlsf', backend: tlsfBackend }, { workerCounts: [1, 2, 4] });
