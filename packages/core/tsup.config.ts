import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/test-kit/index.ts', 'src/test-kit/kit-worker.ts', 'src/demo.ts', 'src/tools/alloc-pairs.ts', 'src/tools/delayed-free-cost.ts'],
  format: ['esm'],
  target: 'node20',
  // Declarations are built without `composite`, which only the root `tsc -b` typecheck needs.
  dts: { entry: ['src/index.ts', 'src/test-kit/index.ts'], compilerOptions: { composite: false } },
  sourcemap: true,
  clean: true,
  splitting: true,
  external: ['vitest', 'fast-check', 'tsx'],
  // The bootstrap that lets a worker start on a TypeScript entry ships beside the chunks.
  onSuccess: 'cp src/worker-bootstrap.mjs dist/',
});
