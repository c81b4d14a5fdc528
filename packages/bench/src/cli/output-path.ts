/**
 * Output paths, checked before a command runs: a run of minutes whose results then cannot
 * be written (a folder given as the file, a file given as a folder, a folder nobody may
 * write in) would otherwise be lost to a Node error at its very end. What the check cannot
 * foresee (a full disk, a race) still ends in one line: `main.ts` turns any file-system error
 * into `error: ...` and exit status 1.
 */

import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import type { Command } from 'commander';

import { failRun } from './fail-run.js';
import { STDOUT } from './json-output.js';

/** What the path names: a file the command writes, or a folder it writes files into. */
export type OutputKind = 'file' | 'folder';

/**
 * Why `path` cannot be written as a `kind`, or null when it can: the path itself is the
 * other kind, a folder above it is a file, or the nearest folder that exists is not writable.
 * `-` (stdout) is always writable.
 */
export function outputPathProblem(path: string, kind: OutputKind): string | null {
  if (path === STDOUT && kind === 'file') return null;
  if (path === '') return 'an empty path';
  const full = resolve(path);
  if (existsSync(full)) {
    const isFolder = statSync(full).isDirectory();
    if (kind === 'file' && isFolder) return `${path} is a folder, not a file`;
    if (kind === 'folder' && !isFolder) return `${path} is a file, not a folder`;
    return writable(full, kind === 'folder' ? full : dirname(full));
  }
  // The nearest existing folder above must be a folder we may write in.
  let above = dirname(full);
  while (!existsSync(above)) above = dirname(above);
  if (!statSync(above).isDirectory()) return `${above} is a file, so nothing can be written under it`;
  return writable(full, above);
}

/** Null when this process may write in `folder`, else why not (for `path`). */
function writable(path: string, folder: string): string | null {
  try {
    accessSync(folder, constants.W_OK);
    return null;
  } catch {
    return `cannot write ${path}: the folder ${folder} is not writable`;
  }
}

/**
 * Ends the command (exit status 1, no usage hint) when `path`, given by `option`, cannot be
 * written as a `kind`; call it before the run.
 */
export function checkOutputPath(command: Command, option: string, path: string | undefined, kind: OutputKind): void {
  if (path === undefined) return;
  const problem = outputPathProblem(path, kind);
  if (problem !== null) failRun(command, `error: ${option} ${path}: ${problem}`);
}
