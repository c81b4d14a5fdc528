/**
 * Backends from outside heaplab on the command line: `--backend-module <path|package>`
 * (repeatable) and the environment variable `HEAPLAB_BACKEND_MODULES` (paths or package
 * names separated by the platform's path delimiter, `:` or `;` on Windows). Every command
 * that takes backends adds the option with `addBackendModuleOption`, which also loads the
 * modules before the command's action runs, so `--backend mine` and `--backend all` see their
 * backends. The loaded modules then reach every thread and process the run starts: workers
 * through core's `spawnWorker`, isolated processes in their requests.
 */

import { delimiter } from 'node:path';

import { AllocError, type BackendDescriptor, loadBackendModule } from '@heaplab/core';
import type { Command } from 'commander';

import { discoverBackends } from '../contenders/backends.js';
import { failRun } from './fail-run.js';

/** The environment variable that names backend modules for every command. */
export const BACKEND_MODULES_VARIABLE = 'HEAPLAB_BACKEND_MODULES';

/** Commander's form for a repeatable option: each value appended to those before. */
function collect(value: string, previous: readonly string[] = []): string[] {
  return [...previous, value];
}

/** The modules `HEAPLAB_BACKEND_MODULES` names in `environment`, empty parts skipped. */
export function backendModulesFromEnvironment(environment: NodeJS.ProcessEnv = process.env): string[] {
  return (environment[BACKEND_MODULES_VARIABLE] ?? '')
    .split(delimiter)
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/**
 * Imports heaplab's backend packages, then loads the modules of `HEAPLAB_BACKEND_MODULES`
 * and `specifiers` (in that order), each resolved from the working directory. Loading heaplab's
 * own first makes a module that takes one of their names fail here, naming the module.
 * @returns the descriptors the modules export
 * @throws AllocError from `loadBackendModule`, its message starting with where the module
 *   was named (`--backend-module nope.ts: ...` or `HEAPLAB_BACKEND_MODULES entry ...: ...`)
 */
export async function loadBackendModules(specifiers: readonly string[], environment: NodeJS.ProcessEnv = process.env): Promise<BackendDescriptor[]> {
  await discoverBackends();
  const named = [
    ...backendModulesFromEnvironment(environment).map((specifier) => ({ specifier, source: `${BACKEND_MODULES_VARIABLE} entry '${specifier}'` })),
    ...specifiers.map((specifier) => ({ specifier, source: `--backend-module ${specifier}` })),
  ];
  const descriptors: BackendDescriptor[] = [];
  for (const { specifier, source } of named) {
    try {
      descriptors.push(...(await loadBackendModule(specifier)));
    } catch (error) {
      if (error instanceof AllocError) throw new AllocError(error.kind, `${source}: ${error.message}`);
      throw error;
    }
  }
  return descriptors;
}

/**
 * Adds `--backend-module` to `command`, and a hook that loads its modules and those of
 * `HEAPLAB_BACKEND_MODULES` before the action; a module that cannot be loaded ends the
 * command with its message and status 1.
 */
export function addBackendModuleOption(command: Command): Command {
  return command
    .option(
      '--backend-module <path|package>',
      `load backends from a module outside heaplab: a file (.js, .mjs, or .ts through tsx) or an installed package; repeat for more ` +
        `(also ${BACKEND_MODULES_VARIABLE}, separated by '${delimiter}'). See docs/backend-modules.md`,
      collect,
    )
    .hook('preAction', async (self) => {
      try {
        await loadBackendModules((self.opts() as { backendModule?: string[] }).backendModule ?? []);
      } catch (error) {
        if (error instanceof AllocError) failRun(self, `error: ${error.message}`);
        throw error;
      }
    });
}
