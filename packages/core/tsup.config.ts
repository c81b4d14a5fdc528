import { copyFileSync } from 'node:fs';

import { defineConfig } from 'tsup';

import { sharedTsupOptions, writeEsmOnlyStub } from '../../tsup.shared.js';

export default defineConfig({
  ...sharedTsupOptions,
  entry: ['src/index.ts', 'src/backend/index.ts', 'src/internal.ts', 'src/demo.ts', 'src/tools/delayed-free-cost.ts'],
  dts: { ...(sharedTsupOptions.dts as object), entry: ['src/index.ts', 'src/backend/index.ts', 'src/internal.ts'] },
  splitting: true,
  // The bootstrap that lets a worker start on a TypeScript entry or load backend modules
  // first, and the TypeScript module that tells whether tsx is active, ship beside the chunks.
  // Then the require() stub every package gets.
  onSuccess: async () => {
    for (const file of ['worker-bootstrap.mjs', 'typescript-probe.ts']) copyFileSync(`src/platform/${file}`, `dist/${file}`);
    writeEsmOnlyStub();
  },
});
