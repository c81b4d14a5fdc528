#!/usr/bin/env node
/**
 * Installs the Debian packages the tests use when they are missing: the C allocators the
 * native baselines preload (docs/native-allocators.md), and chromium, in which
 * packages/bench/test/report-browser.test.ts opens the HTML report. Run by `pnpm test`
 * before the suites. As root with apt-get it installs them; otherwise it prints what is
 * missing, and the tests that need them skip with the same message.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const PACKAGES = [
  { name: 'libmimalloc2.0', soname: 'libmimalloc.so.2', uses: 'the native allocator tests' },
  { name: 'libjemalloc2', soname: 'libjemalloc.so.2', uses: 'the native allocator tests' },
  { name: 'libtcmalloc-minimal4', soname: 'libtcmalloc_minimal.so.4', uses: 'the native allocator tests' },
  // A program, not a library: found by its path, which the browser test launches.
  { name: 'chromium', file: '/usr/bin/chromium', uses: 'the report browser test' },
];

const listed = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '';
const isMissing = (pkg) => (pkg.file !== undefined ? !existsSync(pkg.file) : !listed.includes(pkg.soname));
const missing = PACKAGES.filter(isMissing);
if (missing.length === 0) process.exit(0);

const names = missing.map((pkg) => pkg.name).join(' ');
/** The tests that skip without `packages`, each named once. */
const usesOf = (packages) => [...new Set(packages.map((pkg) => pkg.uses))].join(' and ');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasApt = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
if (!isRoot || !hasApt) {
  console.warn(`system packages: missing ${names}; ${usesOf(missing)} will skip (install with: apt-get install -y ${names})`);
  process.exit(0);
}
console.warn(`system packages: installing ${names} (apt-get)`);
const run = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
if (!run(['install', '-y', '-qq', ...missing.map((pkg) => pkg.name)]) && !(run(['update', '-qq']) && run(['install', '-y', '-qq', ...missing.map((pkg) => pkg.name)]))) {
  const still = PACKAGES.filter(isMissing);
  console.warn(`system packages: apt-get could not install ${still.map((pkg) => pkg.name).join(' ')}; ${usesOf(still)} will skip`);
}
