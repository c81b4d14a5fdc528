import { describeMultiWorker } from '@heaplab/test-kit';

import { tlsfBackend } from '../src/index.js';

describeMultiWorker({ label: 'tlsf', backend: tlsfBackend }, { workerCounts: [1, 2, 4] });
describeMultiWorker({ label: 'tlsf (2 arenas)', backend: tlsfBackend, options: { arenas: 2 } }, { workerCounts: [2, 4] });
