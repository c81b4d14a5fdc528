import { describeMultiWorker } from '@heaplab/test-kit';

import { mimallocBackend } from '../src/index.js';

describeMultiWorker({ label: 'mimalloc', backend: mimallocBackend }, { workerCounts: [1, 2, 4] });
// Pages emptied across threads are held for QSBR goals; blocks must still come back whole.
describeMultiWorker({ label: 'mimalloc (delayedPageReuse)', backend: mimallocBackend, options: { delayedPageReuse: true } }, { workerCounts: [2, 4] });
