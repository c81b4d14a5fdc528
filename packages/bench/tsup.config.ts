import { defineConfig } from 'tsup';

import { sharedTsupOptions } from '../../tsup.shared.js';

export default defineConfig({
  ...sharedTsupOptions,
  // cli.js is the `heaplab` bin (its shebang comes from src/cli.ts); bench-worker.js is the
  // entry every benchmark worker starts on, found next to the chunk that spawns it.
  entry: ['src/index.ts', 'src/cli.ts', 'src/bench-worker.ts'],
  dts: { ...(sharedTsupOptions.dts as object), entry: ['src/index.ts'] },
  // One copy of shared modules for the CLI, the worker and the library.
  splitting: true,
});
