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
  // Folds constants and inlines the layout constants imported across files, so the offsets
  // of hot paths are literals in the bundle. Without it each one is a module-variable load,
  // a small-integer check and an untag, on every access (about a third of a free's time).
  // Names and whitespace are kept: the output stays readable.
  minifySyntax: true,
};
