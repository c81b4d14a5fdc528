import { defineConfig } from 'tsup';

import { sharedTsupOptions } from '../../tsup.shared.js';

export default defineConfig({
  ...sharedTsupOptions,
  // kit-worker.ts is the module the kit's workers start on (worker-pool.ts names it
  // kit-worker.js in the build): an entry of its own, so it exists beside index.js.
  entry: ['src/index.ts', 'src/kit-worker.ts'],
  dts: { ...(sharedTsupOptions.dts as object), entry: ['src/index.ts'] },
  splitting: true,
});
