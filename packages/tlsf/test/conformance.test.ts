import { describeConformance } from '@heaplab/test-kit';

import { tlsfBackend } from '../src/index.js';

describeConformance({ label: 'tlsf', backend: tlsfBackend });
describeConformance({ label: 'tlsf (by name)', backend: 'tlsf' });
describeConformance({ label: 'tlsf (2 arenas)', backend: tlsfBackend, options: { arenas: 2 } });
