import { describeConformance } from '@heaplab/core/test-kit';

import { mimallocBackend } from '../src/index.js';

describeConformance({ label: 'mimalloc', backend: mimallocBackend });
describeConformance({ label: 'mimalloc (secure)', backend: mimallocBackend, options: { secure: true } });
