import { describeCorruptionDetection } from '@heaplab/test-kit';

import { tlsfBackend } from '../src/index.js';

describeCorruptionDetection({ label: 'tlsf', backend: tlsfBackend });
