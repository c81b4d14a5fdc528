/**
 * Whether a test may run what `pnpm build` made (dist/): the bench's and core's builds must
 * exist and be newer than every source file of the two, or the test would run old code.
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

/** Why dist/ cannot be tested: not built, or older than a source file of core or the bench; undefined when it can. */
export function distMissing(): string | undefined {
  const coreDist = fileURLToPath(new URL('../../core/dist/index.js', import.meta.url));
  if (!existsSync(DIST_CLI) || !existsSync(coreDist)) return 'packages/bench/dist or packages/core/dist is not built';
  const built = Math.min(statSync(DIST_CLI).mtimeMs, statSync(coreDist).mtimeMs);
  const sources = ['../src', '../../core/src'].map((folder) => fileURLToPath(new URL(folder, import.meta.url)));
  for (const folder of sources) {
    for (const file of readdirSync(folder, { recursive: true, encoding: 'utf8' })) {
      if (statSync(join(folder, file)).mtimeMs > built) return `dist/ is older than ${join(folder, file)} (run pnpm build)`;
    }
  }
  return undefined;
}
