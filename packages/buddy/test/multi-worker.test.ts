import { describeMultiWorker } from '@heaplab/test-kit';

import { buddyBackend } from '../src/index.js';

describeMultiWorker({ label: 'buddy', backend: buddyBackend }, { workerCounts: [1, 2, 4] });
describeMultiWorker({ label: 'buddy (2 arenas)', backend: buddyBackend, options: { arenas: 2 } }, { workerCounts: [2, 4] });
