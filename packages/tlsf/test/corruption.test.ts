import { describeCorruptionDetection } from '@heaplab/core/test-kit';

import { tlsfBackend } from '../src/index.js';

describeCorruptionDetection({ label: 'tlsf', backend: tlsfBackend });
