/**
 * Building and running a workload's C port (packages/bench/native/<program>.c): compiled at
 * run time with `cc -O2 -pthread` once per source version (the binary is cached in the temp
 * directory under a hash of the source, the shared header and the flags), and run against a
 * C allocator: the C library's malloc, or one put in front of it by `LD_PRELOAD`.
 *
 * Every port ends its output with the trailer of native/heaplab-native.h (wall, CPU, peak
 * RSS, the library it found mapped); `runNativeProgram` takes the trailer off, checks that
 * the preload took effect, and hands back the port's own lines.
 */

import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { findNativeAllocator, type NativeAllocatorName } from '../contenders/native-allocators.js';

const execute = promisify(execFile);

/** The package's native/ folder: two up from src/run/ in the sources, one up from dist/ when built. */
const NATIVE_DIR = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../../native/' : '../native/', import.meta.url));
const SHARED_HEADER = join(NATIVE_DIR, 'heaplab-native.h');
const COMPILER = process.env['CC'] ?? 'cc';
/** `-ffp-contract=off`: glibc-thread's size table is computed in float, as the C original does, and must not use fused multiply-adds. */
const COMPILE_FLAGS = ['-O2', '-pthread', '-ffp-contract=off'];

/** A built port, or why there is none. */
export type NativeBuild = { binary: string } | { missing: string };

const builds = new Map<string, NativeBuild>();

/** The path of a port's source. */
export function nativeSourcePath(program: string): string {
  return join(NATIVE_DIR, `${program}.c`);
}

/** Compiles `native/<program>.c` once per process and source version. */
export function buildNativeProgram(program: string): NativeBuild {
  const cached = builds.get(program);
  if (cached !== undefined) return cached;
  const build = compile(program);
  builds.set(program, build);
  return build;
}

function compile(program: string): NativeBuild {
  const source = nativeSourcePath(program);
  if (!existsSync(source)) return { missing: `the C source ${source} is missing` };
  const hash = createHash('sha256')
    .update(readFileSync(source))
    .update(existsSync(SHARED_HEADER) ? readFileSync(SHARED_HEADER) : '')
    .update(COMPILE_FLAGS.join(' '))
    .digest('hex')
    .slice(0, 12);
  const directory = join(tmpdir(), `heaplab-native-${hash}`);
  const binary = join(directory, program);
  if (existsSync(binary)) return { binary };
  mkdirSync(directory, { recursive: true });
  const compiled = spawnSync(COMPILER, [...COMPILE_FLAGS, '-I', NATIVE_DIR, '-o', binary, source, '-lm'], { encoding: 'utf8' });
  if (compiled.error !== undefined) return { missing: `no C compiler ('${COMPILER}' could not run: ${compiled.error.message}); native row skipped` };
  if (compiled.status !== 0) return { missing: `'${COMPILER}' failed to compile ${source}: ${compiled.stderr.trim()}` };
  return { binary };
}

/** What a port run gives back. */
export interface NativeRun {
  /** The port's own lines, the trailer taken off. */
  readonly lines: string[];
  readonly wallSeconds: number;
  /** User + system time of the port's process. */
  readonly cpuSeconds: number;
  /** The port process's own peak resident size (VmHWM), in KiB. */
  readonly maxRssKiB: number;
}

/** How a port is run. */
export interface NativeRunOptions {
  /** The C allocator to run against. */
  readonly allocator: NativeAllocatorName;
  /** Killed after this many seconds. */
  readonly timeoutSeconds: number;
  /** `bytes` fills blocks byte by byte as mimalloc-bench's programs do (HEAPLAB_FILL). */
  readonly fill?: 'memset' | 'bytes';
}

/**
 * Runs `native/<program>.c` with `args`.
 * @throws Error when there is no compiler or library (saying what to install), when the
 *   port fails or times out, when its output has no trailer, or when the preload did not
 *   take effect
 */
export async function runNativeProgram(program: string, args: readonly string[], options: NativeRunOptions): Promise<NativeRun> {
  const allocator = findNativeAllocator(options.allocator);
  if ('missing' in allocator) throw new Error(allocator.missing);
  const build = buildNativeProgram(program);
  if ('missing' in build) throw new Error(build.missing);
  const env: NodeJS.ProcessEnv = { ...process.env, HEAPLAB_FILL: options.fill ?? 'memset' };
  delete env['LD_PRELOAD'];
  if (allocator.preload !== null) env['LD_PRELOAD'] = allocator.preload;
  const { stdout } = await execute(build.binary, [...args], { env, timeout: options.timeoutSeconds * 1000, maxBuffer: 16 << 20 });
  const run = parseNativeTrailer(stdout);
  // The memory map names the file itself; the preload path may be a symbolic link to it.
  const expected = allocator.preload === null ? 'none' : realpathSync(allocator.preload);
  const mapped = run.preloaded === 'none' ? 'none' : realpathSync(run.preloaded);
  if (mapped !== expected) {
    throw new Error(
      `the port ran against ${run.preloaded === 'none' ? "the C library's malloc" : run.preloaded}, not ${expected} (LD_PRELOAD did not take effect)`,
    );
  }
  return run;
}

/**
 * Splits a port's output into its own lines and the trailer of heaplab-native.h.
 * @throws Error when a trailer line is missing
 */
export function parseNativeTrailer(stdout: string): NativeRun & { preloaded: string } {
  const lines: string[] = [];
  const trailer = new Map<string, string>();
  for (const line of stdout.trim().split('\n')) {
    const match = /^# (wall|cpu|maxrss|preloaded) (.+)$/.exec(line);
    if (match !== null) trailer.set(match[1]!, match[2]!);
    else lines.push(line);
  }
  for (const key of ['wall', 'cpu', 'maxrss', 'preloaded']) {
    if (!trailer.has(key)) throw new Error(`the native program printed no '# ${key}' line: ${stdout.slice(0, 200)}`);
  }
  return {
    lines,
    wallSeconds: Number(trailer.get('wall')),
    cpuSeconds: Number(trailer.get('cpu')),
    maxRssKiB: Number(trailer.get('maxrss')),
    preloaded: trailer.get('preloaded')!,
  };
}
