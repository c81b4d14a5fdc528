import { defineConfig } from 'tsup';

import { sharedTsupOptions } from '../../tsup.shared.js';

export default defineConfig({
  ...sharedTsupOptions,
  entry: ['src/index.ts', 'src/backend/index.ts', 'src/internal.ts', 'src/demo.ts', 'src/tools/delayed-free-cost.ts'],
  dts: { ...(sharedTsupOptions.dts as object), entry: ['src/index.ts', 'src/backend/index.ts', 'src/internal.ts'] },
  splitting: true,
  // The bootstrap that lets a worker start on a TypeScript entry or load backend modules
  // first, and the TypeScript module that tells whether tsx is active, ship beside the chunks.
  onSuccess: 'cp src/platform/worker-bootstrap.mjs src/platform/typescript-probe.ts dist/',
});
