import { describeConformance } from '@heaplab/test-kit';

import { mimallocBackend } from '../src/index.js';

describeConformance({ label: 'mimalloc', backend: mimallocBackend });
describeConformance({ label: 'mimalloc (secure)', backend: mimallocBackend, options: { secure: true } });
// Not run with delayedPageReuse: by design an emptied page waits for every thread's next
// quiescent point, so "free everything, then get the largest block back at once" does not
// hold until the caller passes one (delayed-page-reuse.test.ts covers that option).
