/**
 * Where a run's figures come from, for the report's header: heaplab's version (the bench
 * package's), the command line as it was typed, and the machine.
 */

import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bench package's name, which `benchPackageRoot` looks for. */
const BENCH_PACKAGE = '@heaplab/bench';
/** Folders above this module to look in: src/report/ and dist/ (chunks) both reach the package in two. */
const MAX_PACKAGE_DEPTH = 4;

/**
 * The folder of the bench package (its package.json and the templates/ and native/ it ships),
 * found from this module upwards: from source it is two folders up, bundled in dist/ one.
 * Null when none is found.
 */
export function benchPackageRoot(): string | null {
  let folder = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < MAX_PACKAGE_DEPTH; depth++) {
    try {
      const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { name?: string };
      if (manifest.name === BENCH_PACKAGE) return folder;
    } catch {
      // No package.json here (or not one we can read): look one folder up.
    }
    folder = dirname(folder);
  }
  return null;
}

/** The version in the bench package's package.json; `unknown` when it is not found. */
export function heaplabVersion(): string {
  const root = benchPackageRoot();
  if (root === null) return 'unknown';
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string };
  return typeof manifest.version === 'string' ? manifest.version : 'unknown';
}

/** An argument as a POSIX shell takes it back: quoted when it holds anything but safe characters. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command of `argv` (`process.argv`), to paste back into a shell: `heaplab ...` when the
 * script is heaplab's command line (dist/cli.js, or src/cli/main.ts under tsx), else the
 * script's file name (a test runner, say) and its arguments.
 */
export function commandLine(argv: readonly string[]): string {
  const script = argv[1] ?? '';
  const name = /(^|[/\\])(cli\.js|main\.ts|heaplab)$/.test(script) ? 'heaplab' : basename(script) || 'node';
  return [name, ...argv.slice(2)].map(shellWord).join(' ');
}
