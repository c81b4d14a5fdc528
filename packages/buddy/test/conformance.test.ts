import { describeConformance } from '@heaplab/test-kit';

import { buddyBackend } from '../src/index.js';

describeConformance({ label: 'buddy', backend: buddyBackend });
