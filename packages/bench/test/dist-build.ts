/**
 * Whether a test may run what `pnpm build` made (dist/): the bench's and core's builds must
 * exist, each newer than every source file of its package, or the test would run old code.
 */

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bench's built command line. */
export const DIST_CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** A file of the bench's build, by its path inside dist/ ('tools/heap-per-thread.js'). */
export function distFile(path: string): string {
  return fileURLToPath(new URL(`../dist/${path}`, import.meta.url));
}

/** Why dist/ cannot be tested: not built, or older than a source file of its package (core's or the bench's); undefined when it can. */
export function distMissing(): string | undefined {
  const builds = [
    { built: DIST_CLI, sources: '../src' },
    { built: '../../core/dist/index.js', sources: '../../core/src' },
  ].map(({ built, sources }) => ({
    built: built === DIST_CLI ? built : fileURLToPath(new URL(built, import.meta.url)),
    sources: fileURLToPath(new URL(sources, import.meta.url)),
  }));
  for (const { built, sources } of builds) {
    if (!existsSync(built)) return `${built} is not built (run pnpm build)`;
    const builtAt = statSync(built).mtimeMs;
    for (const file of readdirSync(sources, { recursive: true, encoding: 'utf8' })) {
      if (statSync(join(sources, file)).mtimeMs > builtAt) return `${built} is older than ${join(sources, file)} (run pnpm build)`;
    }
  }
  return undefined;
}
