import { basicBackend } from '../../src/basic/index.js';
import { describeCorruptionDetection } from '@heaplab/test-kit';

describeCorruptionDetection({ label: 'basic', backend: basicBackend });
