import { basicBackend } from '../../src/basic/index.js';
import { describeCrashRecovery } from '@heaplab/test-kit';

for (const strategy of ['first-fit', 'best-fit', 'worst-fit']) {
  describeCrashRecovery({ label: `basic (${strategy})`, backend: basicBackend, options: { strategy } });
}
