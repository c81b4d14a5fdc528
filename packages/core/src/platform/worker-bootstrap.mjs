// Runs a TypeScript worker entry on Node 20, where a worker cannot start from a .ts file:
// registers tsx's loader and a resolve hook that prefers each package's "source" export
// condition (so workspace packages resolve to their src/, as in the tests), then imports
// the entry named by workerData.heaplabEntry.
import { register as registerHooks } from 'node:module';
import { workerData } from 'node:worker_threads';
import { register as registerTsx } from 'tsx/esm/api';

const preferSource = `export async function resolve(specifier, context, next) {
  return next(specifier, { ...context, conditions: ['source', ...(context.conditions ?? [])] });
}`;
registerHooks(`data:text/javascript,${encodeURIComponent(preferSource)}`);
registerTsx();
await import(workerData.heaplabEntry);
