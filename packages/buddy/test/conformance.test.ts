import { describeConformance } from '@heaplab/core/test-kit';

import { buddyBackend } from '../src/index.js';

describeConformance({ label: 'buddy', backend: buddyBackend });
