// Starts a worker that Node cannot start on its entry alone (see worker-spawn.ts), then
// imports the entry named by workerData.heaplabEntry:
// - on Node, for a TypeScript entry, or any entry started by core running from its sources:
//   registers a resolve hook that prefers each package's "heaplab-source" export condition
//   (so workspace packages resolve to their src/, as in the tests) and tsx's loader;
// - backend modules to load first (workerData.heaplabBackendModules): loads each with core's
//   loadBackendModule, which registers tsx itself for a TypeScript module when needed.
//   Core is imported by its package name, as the entry imports it, so that both share one
//   backend registry.
import { register as registerHooks } from 'node:module';
import { workerData } from 'node:worker_threads';

const entry = workerData.heaplabEntry;
const backendModules = workerData.heaplabBackendModules ?? [];

// Deno and Bun load TypeScript themselves, and Node's loader hooks (module.register, which
// tsx uses) are not theirs: there the entry is imported as it is. The test is typescript.ts's
// runsTypeScriptNatively, repeated because this file is copied into the build, not bundled.
const runsTypeScriptNatively = 'Deno' in globalThis || process.versions.bun !== undefined;

if (!runsTypeScriptNatively && (/\.[cm]?ts$/.test(new URL(entry).pathname) || workerData.heaplabFromSource === true)) {
  const preferSource = `export async function resolve(specifier, context, next) {
  return next(specifier, { ...context, conditions: ['heaplab-source', ...(context.conditions ?? [])] });
}`;
  registerHooks(`data:text/javascript,${encodeURIComponent(preferSource)}`);
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
}
if (backendModules.length > 0) {
  const { loadBackendModule } = await import('@heaplab/core');
  for (const module of backendModules) await loadBackendModule(module);
}
await import(entry);
