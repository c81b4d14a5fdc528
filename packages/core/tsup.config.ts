import { defineConfig } from 'tsup';

import { sharedTsupOptions } from '../../tsup.shared.js';

export default defineConfig({
  ...sharedTsupOptions,
  entry: ['src/index.ts', 'src/backend/index.ts', 'src/test-kit/index.ts', 'src/test-kit/kit-worker.ts', 'src/demo.ts', 'src/tools/delayed-free-cost.ts'],
  dts: { ...(sharedTsupOptions.dts as object), entry: ['src/index.ts', 'src/backend/index.ts', 'src/test-kit/index.ts'] },
  splitting: true,
  external: ['vitest', 'fast-check', 'tsx'],
  // The bootstrap that lets a worker start on a TypeScript entry or load backend modules
  // first, and the TypeScript module that tells whether tsx is active, ship beside the chunks.
  onSuccess: 'cp src/platform/worker-bootstrap.mjs src/platform/typescript-probe.ts dist/',
});
