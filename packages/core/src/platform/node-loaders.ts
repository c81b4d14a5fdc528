/**
 * Node's loaders module, imported by core as `#platform/loaders` (package.json `imports`):
 * starting worker threads and loading backend modules by path or package name. Both need
 * Node's file system and `worker_threads`, and both use core's backend registry, so they are
 * apart from the leaf platform module (node.ts) that the registry itself imports. A bundler
 * targeting a browser resolves `#platform/loaders` to browser-loaders.ts, which refuses them.
 */

export { type BackendModuleOptions, loadBackendModule, loadedBackendModules } from '../facade/backend-modules.js';
export { type SpawnWorkerOptions, spawnWorker } from './worker-spawn.js';
