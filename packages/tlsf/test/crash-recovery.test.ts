import { describeCrashRecovery } from '@heaplab/core/test-kit';

import { tlsfBackend } from '../src/index.js';

describeCrashRecovery({ label: 'tlsf', backend: tlsfBackend });
