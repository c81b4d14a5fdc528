import type { Options } from 'tsup';

/**
 * The build every package shares: ESM for Node 20 with declarations and source maps. A
 * package's own tsup.config.ts spreads this and names its entries.
 */
export const sharedTsupOptions: Options = {
  format: ['esm'],
  target: 'node20',
  // Declarations are built without `composite`, which only the root `tsc -b` typecheck needs.
  dts: { compilerOptions: { composite: false } },
  sourcemap: true,
  clean: true,
};
