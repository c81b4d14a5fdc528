import { BASIC_STRATEGIES } from '../../src/index.js';
import { describeMultiWorker } from '@heaplab/test-kit';

for (const strategy of BASIC_STRATEGIES) {
  describeMultiWorker({ label: `basic (${strategy})`, backend: 'basic', options: { strategy } }, { workerCounts: [1, 2, 4] });
}
describeMultiWorker({ label: 'basic (2 arenas)', backend: 'basic', options: { arenas: 2 } }, { workerCounts: [2, 4] });
