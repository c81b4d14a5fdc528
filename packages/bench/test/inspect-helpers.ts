/**
 * What map.test.ts and stats.test.ts share: the command line run in this process, and a
 * backend that cannot be walked (every real backend has a walk now, and what the commands do
 * without one must stay tested): basic under another name, its instances without `walk` and
 * `classStats`, registered in this thread only.
 */

import { basicBackend, registeredBackends, registerBackend } from '@heaplab/core';
import type { Backend } from '@heaplab/core/backend';
import { type Command, CommanderError } from 'commander';
import { vi } from 'vitest';

import { makeProgram } from '../src/cli/program.js';
import { createBackendHeap, discoverBackends } from '../src/contenders/backends.js';

export const NO_WALK_BACKEND = 'no-walk';

registerBackend({
  ...basicBackend,
  name: NO_WALK_BACKEND,
  summary: 'basic without walk(), for tests',
  create(context, options) {
    const backend: Backend = basicBackend.create(context, options);
    // The facade asks the instance whether it has a walk: an object over basic's, without one.
    return Object.assign(Object.create(backend) as Backend, { walk: undefined, classStats: undefined });
  },
});

await discoverBackends();

/** The registered backends whose heaps can be walked, and those that cannot. */
export function walkingBackends(): { walking: string[]; notWalking: string[] } {
  const walking: string[] = [];
  const notWalking: string[] = [];
  for (const descriptor of registeredBackends()) {
    const heap = createBackendHeap({ name: descriptor.name, options: {} }, 8 << 20);
    (heap.supportsWalk() ? walking : notWalking).push(descriptor.name);
    heap.detach();
  }
  return { walking, notWalking };
}

/**
 * `heaplab ...args` in this process (a child process costs seconds per case): commander's
 * exit becomes an exception carrying the status; stdout is what `console.log` printed,
 * stderr commander's messages and `console.error`'s lines.
 */
export async function heaplabInProcess(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const program = makeProgram();
  let stderr = '';
  // Subcommands of subcommands too (`heaplab trace record`).
  const all = (command: Command): Command[] => [command, ...command.commands.flatMap(all)];
  for (const command of all(program)) {
    command.exitOverride().configureOutput({ writeErr: (text) => (stderr += text), writeOut: () => undefined });
  }
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void lines.push(parts.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void (stderr += `${parts.join(' ')}\n`));
  try {
    await program.parseAsync(['node', 'heaplab', ...args]);
    return { status: Number(process.exitCode ?? 0), stdout: lines.join('\n'), stderr };
  } catch (caught) {
    if (caught instanceof CommanderError) return { status: caught.exitCode, stdout: lines.join('\n'), stderr };
    throw caught;
  } finally {
    log.mockRestore();
    error.mockRestore();
    process.exitCode = undefined;
  }
}
