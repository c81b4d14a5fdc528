import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/test-kit/index.ts', 'src/test-kit/kit-worker.ts', 'src/demo.ts', 'src/tools/alloc-pairs.ts'],
  format: ['esm'],
  target: 'node20',
  dts: { entry: ['src/index.ts', 'src/test-kit/index.ts'] },
  sourcemap: true,
  clean: true,
  splitting: true,
  external: ['vitest', 'fast-check', 'tsx'],
});
