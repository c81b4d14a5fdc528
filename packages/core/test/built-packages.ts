/**
 * The tests that run heaplab's built packages (bundled, installed, or on another runtime)
 * must not test a stale build: they say why they cannot run instead. `pnpm test` builds
 * before it runs the suites, so this only speaks when a test file is run on its own.
 */

import { existsSync, readdirSync, statSync } from 'node:fs';
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
