import { describeCrashRecovery } from '@heaplab/test-kit';

import { tlsfBackend } from '../src/index.js';

describeCrashRecovery({ label: 'tlsf', backend: tlsfBackend });
