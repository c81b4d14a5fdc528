import { basicBackend } from '../../src/basic/index.js';
import { describeCorruptionDetection } from '../../src/test-kit/index.js';

describeCorruptionDetection({ label: 'basic', backend: basicBackend });
