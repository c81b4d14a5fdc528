/**
 * Where a run's figures come from, for the report's header: heaplab's version (the bench
 * package's), the command line as it was typed, and the machine.
 */

import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bench package's name, which `heaplabVersion` looks for. */
const BENCH_PACKAGE = '@heaplab/bench';
/** Folders above this module to look in: src/report/ and dist/ (chunks) both reach the package in two. */
const MAX_PACKAGE_DEPTH = 4;

/**
 * The version in the bench package's package.json, found from this module upwards (from
 * source it is two folders up, bundled in dist/ one); `unknown` when none is found.
 */
export function heaplabVersion(): string {
  let folder = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < MAX_PACKAGE_DEPTH; depth++) {
    try {
      const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === BENCH_PACKAGE && typeof manifest.version === 'string') return manifest.version;
    } catch {
      // No package.json here (or not one we can read): look one folder up.
    }
    folder = dirname(folder);
  }
  return 'unknown';
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
