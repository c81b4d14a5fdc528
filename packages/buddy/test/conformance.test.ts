import { describeConformance } from '@heaplab/test-kit';

import { buddyBackend } from '../src/index.js';

describeConformance({ label: 'buddy', backend: buddyBackend });
describeConformance({ label: 'buddy (2 arenas)', backend: buddyBackend, options: { arenas: 2 } });
