// The types a CommonJS module gets for this package, which is ES modules only: nothing to
// import, so that `import { ... }` in a .cts file (or any CommonJS TypeScript) fails to
// type-check, as require() would fail at run time (dist/esm-only.cjs). Use an ES module.
export declare const ESM_ONLY_USE_IMPORT_IN_AN_ES_MODULE: never;
