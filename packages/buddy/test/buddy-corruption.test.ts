import { describeCorruptionDetection } from '@heaplab/core/test-kit';

import { buddyBackend } from '../src/index.js';

describeCorruptionDetection({ label: 'buddy', backend: buddyBackend });
