import { describeConformance } from '@heaplab/test-kit';

import { tlsfBackend } from '../src/index.js';

describeConformance({ label: 'tlsf', backend: tlsfBackend });
describeConformance({ label: 'tlsf (by name)', backend: 'tlsf' });
