import { defineConfig } from 'tsup';

import { sharedTsupOptions } from '../../tsup.shared.js';

export default defineConfig({
  ...sharedTsupOptions,
  // cli.js is the `heaplab` bin (its shebang comes from src/cli.ts); bench-worker.js is the
  // entry every benchmark worker starts on, and run-child.js the entry of a process that
  // runs one isolated row, both found next to the chunk that starts them.
  entry: ['src/index.ts', 'src/cli.ts', 'src/bench-worker.ts', 'src/run-child.ts', 'src/tools/iteration-cost.ts'],
  dts: { ...(sharedTsupOptions.dts as object), entry: ['src/index.ts'] },
  // One copy of shared modules for the CLI, the worker and the library.
  splitting: true,
});
