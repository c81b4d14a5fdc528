/**
 * Corrupted metadata is reported or survived, never looped on and never turned into an
 * address outside the arena or the block's page: core's corruption suite, in every mode.
 */

import { describeCorruptionDetection } from '@heaplab/test-kit';

import { mimallocBackend } from '../src/index.js';

describeCorruptionDetection({ label: 'mimalloc', backend: mimallocBackend });
describeCorruptionDetection({ label: 'mimalloc:secure=true', backend: mimallocBackend, options: { secure: true } });
describeCorruptionDetection({ label: 'mimalloc:delayedPageReuse=true', backend: mimallocBackend, options: { delayedPageReuse: true } });
