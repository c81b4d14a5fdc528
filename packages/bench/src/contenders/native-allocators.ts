/**
 * The C allocators the `native` baselines run: the C library's malloc (glibc here), and
 * mimalloc, jemalloc and tcmalloc when Debian's packages are installed, each put in front of
 * the C library's by `LD_PRELOAD`. A workload's C port is the same program for all four; the
 * allocator is chosen when the program starts.
 *
 * The libraries come from one line (see docs/native-allocators.md):
 *
 *   apt-get install -y libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4
 *
 * Lookups run once per process and never throw: a library that is not there is a row that
 * says what to install, never a silent gap.
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The C allocators, in table order. */
export const NATIVE_ALLOCATORS = ['glibc', 'mimalloc', 'jemalloc', 'tcmalloc'] as const;

/** One of `NATIVE_ALLOCATORS`. */
export type NativeAllocatorName = (typeof NATIVE_ALLOCATORS)[number];

/** How to find a preloaded allocator: its shared object and the Debian package that has it. */
interface PreloadedLibrary {
  /** The soname `ldconfig -p` lists. */
  readonly soname: string;
  readonly debianPackage: string;
}

const PRELOADED: Readonly<Record<Exclude<NativeAllocatorName, 'glibc'>, PreloadedLibrary>> = {
  mimalloc: { soname: 'libmimalloc.so.2', debianPackage: 'libmimalloc2.0' },
  jemalloc: { soname: 'libjemalloc.so.2', debianPackage: 'libjemalloc2' },
  tcmalloc: { soname: 'libtcmalloc_minimal.so.4', debianPackage: 'libtcmalloc-minimal4' },
};

/** The `apt-get` line that installs every preloaded allocator. */
export const NATIVE_INSTALL_LINE = `apt-get install -y ${Object.values(PRELOADED)
  .map((library) => library.debianPackage)
  .join(' ')}`;

/** A C allocator found on this machine. */
export interface NativeAllocator {
  readonly name: NativeAllocatorName;
  /** Its version as the package manager (or the C library) reports it; 'unknown' when none does. */
  readonly version: string;
  /** The shared object to preload; null for the C library's own malloc. */
  readonly preload: string | null;
}

/** A C allocator that is not installed, and the line that installs it. */
export interface MissingNativeAllocator {
  readonly name: NativeAllocatorName;
  readonly missing: string;
}

const found = new Map<NativeAllocatorName, NativeAllocator | MissingNativeAllocator>();

/** The allocator `name` on this machine, or why it is not there (looked up once). */
export function findNativeAllocator(name: NativeAllocatorName): NativeAllocator | MissingNativeAllocator {
  let entry = found.get(name);
  if (entry === undefined) {
    entry = name === 'glibc' ? { name, version: cLibraryVersion(), preload: null } : findPreloaded(name, PRELOADED[name]);
    found.set(name, entry);
  }
  return entry;
}

/** The row label of a native allocator: `native glibc 2.36`, `native mimalloc 2.0.9`. */
export function nativeLabel(name: NativeAllocatorName): string {
  const allocator = findNativeAllocator(name);
  return 'version' in allocator ? `native ${name} ${allocator.version}` : `native ${name}`;
}

function findPreloaded(name: NativeAllocatorName, library: PreloadedLibrary): NativeAllocator | MissingNativeAllocator {
  const path = librariesByName().get(library.soname);
  if (path === undefined || !existsSync(path)) {
    return { name, missing: `${library.soname} is not installed (${NATIVE_INSTALL_LINE}, or just ${library.debianPackage})` };
  }
  return { name, version: packageVersion(library.debianPackage), preload: path };
}

let libraries: Map<string, string> | undefined;

/** soname -> path, from the dynamic linker's cache (`ldconfig -p`), for this machine's architecture. */
function librariesByName(): Map<string, string> {
  if (libraries !== undefined) return libraries;
  libraries = new Map();
  const listed = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  const text = listed.status === 0 ? listed.stdout : (spawnSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '');
  for (const line of text.split('\n')) {
    // "\tlibjemalloc.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libjemalloc.so.2"
    const match = /^\s*(\S+) \(([^)]*)\) => (\S+)$/.exec(line);
    if (match === null || !architectureMatches(match[2]!)) continue;
    if (!libraries.has(match[1]!)) libraries.set(match[1]!, match[3]!);
  }
  return libraries;
}

/** Whether an `ldconfig -p` tag such as `libc6,x86-64` is this process's architecture. */
function architectureMatches(tag: string): boolean {
  if (process.arch === 'x64') return tag.includes('x86-64');
  if (process.arch === 'arm64') return tag.includes('AArch64');
  return true;
}

/** The upstream version of a Debian package (`2.0.9` of `2.0.9+ds-2`), or 'unknown'. */
function packageVersion(debianPackage: string): string {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own field syntax
  const query = spawnSync('dpkg-query', ['-W', '-f', '${Version}', debianPackage], { encoding: 'utf8' });
  if (query.status !== 0 || query.stdout.trim() === '') return 'unknown';
  return query.stdout
    .trim()
    .replace(/^\d+:/, '')
    .replace(/[+~-].*$/, '');
}

/** The C library's version (`getconf GNU_LIBC_VERSION` prints "glibc 2.36"), or 'unknown'. */
function cLibraryVersion(): string {
  const query = spawnSync('getconf', ['GNU_LIBC_VERSION'], { encoding: 'utf8' });
  const match = query.status === 0 ? /(\d+\.\d+(\.\d+)?)/.exec(query.stdout) : null;
  return match?.[1] ?? 'unknown';
}
