import { describeRefillRuns } from '@heaplab/test-kit';

import { tlsfBackend } from '../src/index.js';

describeRefillRuns({ label: 'tlsf', descriptor: tlsfBackend });
describeRefillRuns({ label: 'tlsf (checked)', descriptor: tlsfBackend, checked: true });
