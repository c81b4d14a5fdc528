import { defineConfig } from 'tsup';

import { sharedTsupOptions } from '../../tsup.shared.js';

export default defineConfig({
  ...sharedTsupOptions,
  // kit-worker.ts is the module the kit's workers start on (worker-pool.ts names it
  // kit-worker.js in the build): an entry of its own, so it exists beside index.js.
  // grade.ts is what `heaplab grade` reads without vitest (the suite's path and variables);
  // grade-suite.ts is the test file it has vitest run, found beside grade.js.
  entry: ['src/index.ts', 'src/kit-worker.ts', 'src/grade.ts', 'src/grade-suite.ts'],
  dts: { ...(sharedTsupOptions.dts as object), entry: ['src/index.ts', 'src/grade.ts'] },
  splitting: true,
});
