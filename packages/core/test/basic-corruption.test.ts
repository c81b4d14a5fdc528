import { basicBackend } from '../src/basic-allocator.js';
import { describeCorruptionDetection } from '../src/test-kit/index.js';

describeCorruptionDetection({ label: 'basic', backend: basicBackend });
