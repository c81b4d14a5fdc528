import { copyFileSync } from 'node:fs';

import { defineConfig } from 'tsup';

import { onSuccessWithStub, sharedTsupOptions } from '../../tsup.shared.js';

export default defineConfig({
  ...sharedTsupOptions,
  entry: [
    'src/index.ts',
    'src/backend/index.ts',
    'src/internal.ts',
    'src/demo.ts',
    'src/tools/delayed-free-cost.ts',
    // The platform modules (package.json `imports`): core's chunks import them by their
    // `#platform` names, kept external, so that Node takes node*.js and a bundler for a
    // browser browser*.js, sharing core's chunks either way.
    'src/platform/node.ts',
    'src/platform/browser.ts',
    'src/platform/node-loaders.ts',
    'src/platform/browser-loaders.ts',
  ],
  external: ['#platform', '#platform/loaders'],
  // index.d.ts re-exports the loaders by their `#platform/loaders` name; package.json's
  // `imports` gives it the types of Node's, which the browser's repeat.
  dts: {
    ...(sharedTsupOptions.dts as object),
    entry: ['src/index.ts', 'src/backend/index.ts', 'src/internal.ts', 'src/platform/node.ts', 'src/platform/node-loaders.ts'],
  },
  splitting: true,
  // The bootstrap that lets a worker start on a TypeScript entry or load backend modules
  // first, and the TypeScript module that tells whether tsx is active, ship beside the code
  // that finds them by `import.meta.url`: today the loaders entry (dist/platform/), and
  // beside the chunks in case splitting moves that code into one.
  onSuccess: onSuccessWithStub(() => {
    for (const dir of ['dist', 'dist/platform']) {
      for (const file of ['worker-bootstrap.mjs', 'typescript-probe.ts']) copyFileSync(`src/platform/${file}`, `${dir}/${file}`);
    }
  }),
});
