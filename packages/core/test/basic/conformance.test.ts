import { MiB } from '@heaplab/core';
import { BASIC_STRATEGIES } from '../../src/index.js';
import { describeConformance } from '@heaplab/test-kit';

for (const strategy of BASIC_STRATEGIES) {
  describeConformance({ label: `basic (${strategy})`, backend: 'basic', options: { strategy } });
}
describeConformance({ label: 'basic (3 arenas)', backend: 'basic', options: { arenas: 3 }, fillHeapBytes: 12 * MiB });
