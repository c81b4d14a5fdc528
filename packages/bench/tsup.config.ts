import { defineConfig } from 'tsup';

import { onSuccessWithStub, sharedTsupOptions } from '../../tsup.shared.js';
import { bundlePlayground } from './src/playground/bundle-playground.js';

export default defineConfig({
  ...sharedTsupOptions,
  // cli.js is the `heaplab` bin (its shebang comes from src/cli/main.ts); thread-worker.js is
  // the entry every benchmark worker starts on, and isolated-child.js the entry of a process
  // that runs one isolated row. All sit in dist/ beside the chunks that start them, which
  // find them by a path relative to their own.
  entry: {
    index: 'src/index.ts',
    cli: 'src/cli/main.ts',
    'thread-worker': 'src/run/thread-worker.ts',
    'isolated-child': 'src/run/isolated-child.ts',
    'tools/iteration-cost': 'src/tools/iteration-cost.ts',
    'tools/line-sharing': 'src/tools/line-sharing.ts',
    'tools/line-round-trip': 'src/tools/line-round-trip.ts',
    'tools/heap-per-thread': 'src/tools/heap-per-thread.ts',
    'tools/xmalloc-rhythm': 'src/tools/xmalloc-rhythm.ts',
    // The latency workload's isolated process (src/workloads/latency/isolated.ts finds it here).
    'latency-child': 'src/workloads/latency/child.ts',
    // Each thread of a multi-thread trace replay (src/replay/replay-engine.ts finds it here).
    'replay-worker': 'src/replay/replay-worker.ts',
  },
  dts: { ...(sharedTsupOptions.dts as object), entry: { index: 'src/index.ts' } },
  // One copy of shared modules for the CLI, the worker and the library.
  splitting: true,
  // The heap playground `heaplab serve` serves, bundled for browsers beside the CLI.
  onSuccess: onSuccessWithStub(async () => {
    const { directory, scriptBytes } = await bundlePlayground('dist/playground');
    console.log(`playground: ${directory}, ${(scriptBytes / 1024).toFixed(0)} KiB of script`);
  }),
});
