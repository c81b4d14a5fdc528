import { describeCrashRecovery } from '@heaplab/core/test-kit';

import { buddyBackend } from '../src/index.js';

describeCrashRecovery({ label: 'buddy', backend: buddyBackend });
