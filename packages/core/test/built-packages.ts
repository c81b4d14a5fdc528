/**
 * The tests that run heaplab's built packages (bundled, installed, or on another runtime)
 * must not test a stale build: they say why they cannot run instead. `pnpm test` builds
 * before it runs the suites, so this only speaks when a test file is run on its own.
 */

import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder that holds every package (`packages/`). */
export const PACKAGES = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Why the built `folders` (under packages/) cannot be used: not built, or older than one of
 * their source files; undefined when every one is current.
 */
export function staleBuild(folders: readonly string[]): string | undefined {
  for (const folder of folders) {
    const index = join(PACKAGES, folder, 'dist', 'index.js');
    if (!existsSync(index)) return `packages/${folder}/dist is not built (run pnpm build)`;
    const built = statSync(index).mtimeMs;
    const sources = join(PACKAGES, folder, 'src');
    for (const file of readdirSync(sources, { recursive: true, encoding: 'utf8' })) {
      if (statSync(join(sources, file)).mtimeMs > built) return `packages/${folder}/dist is older than src/${file} (run pnpm build)`;
    }
  }
  return undefined;
}

/**
 * A scratch project in the temporary directory whose `node_modules/@heaplab/` links the
 * package `folders` (under packages/), as a workspace links them: a bundler or a runtime
 * follows the links to the real packages, whose own node_modules give every backend the
 * same core. It has a `package.json` named `name`, of type module, and nothing else.
 * @returns the project's directory (the caller removes it)
 */
export function linkedProject(name: string, folders: readonly string[]): string {
  const project = mkdtempSync(join(tmpdir(), `heaplab-${name}-`));
  mkdirSync(join(project, 'node_modules', '@heaplab'), { recursive: true });
  for (const folder of folders) symlinkSync(join(PACKAGES, folder), join(project, 'node_modules', '@heaplab', folder), 'dir');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  return project;
}
