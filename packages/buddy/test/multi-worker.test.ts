import { describeMultiWorker } from '@heaplab/test-kit';

import { buddyBackend } from '../src/index.js';

describeMultiWorker({ label: 'buddy', backend: buddyBackend }, { workerCounts: [1, 2, 4] });
