/**
 * The `native` baseline: native/bench-malloc-thread.c, heaplab's C port of the same
 * benchmark, compiled at run time with `cc -O2 -pthread` when a compiler is present and run
 * against the C library's malloc. Without a compiler the rows say so and the bench goes on.
 */

import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import type { Contender } from '../../contenders/contender.js';
import type { GlibcThreadRow, GlibcUpstreamJson } from './row.js';

const run = promisify(execFile);

/**
 * The C source, in the package's `native/` folder: from source this file is three folders
 * below it (src/workloads/glibc-thread/); built, its chunk is in dist/, one below.
 */
const SOURCE_PATH = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? '../../../native/bench-malloc-thread.c' : '../native/bench-malloc-thread.c', import.meta.url),
);
const COMPILER = process.env['CC'] ?? 'cc';
const COMPILE_FLAGS = ['-O2', '-pthread', '-ffp-contract=off'];

let built: { binary: string } | { missing: string } | undefined;

/**
 * Compiles the C port once per process (and once per source version: the binary is cached
 * in the temp directory under a hash of the source). Returns the binary's path, or why there
 * is none.
 */
export function buildNativeBench(): { binary: string } | { missing: string } {
  if (built !== undefined) return built;
  if (!existsSync(SOURCE_PATH)) return (built = { missing: `the C source ${SOURCE_PATH} is missing` });
  const source = readFileSync(SOURCE_PATH);
  const hash = createHash('sha256').update(source).update(COMPILE_FLAGS.join(' ')).digest('hex').slice(0, 12);
  const directory = join(tmpdir(), `heaplab-native-${hash}`);
  const binary = join(directory, 'bench-malloc-thread');
  if (existsSync(binary)) return (built = { binary });
  mkdirSync(directory, { recursive: true });
  const compiled = spawnSync(COMPILER, [...COMPILE_FLAGS, '-o', binary, SOURCE_PATH], { encoding: 'utf8' });
  if (compiled.error !== undefined) {
    return (built = { missing: `no C compiler ('${COMPILER}' could not run: ${compiled.error.message}); native row skipped` });
  }
  if (compiled.status !== 0) {
    return (built = { missing: `'${COMPILER}' failed to compile ${SOURCE_PATH}: ${compiled.stderr.trim()}` });
  }
  return (built = { binary });
}

/** Runs the native port; a missing compiler or a failure becomes a row with `error`. */
export async function runNativeGlibcThread(contender: Contender, threads: number, durationSeconds: number): Promise<GlibcThreadRow> {
  const base = { label: contender.label, kind: contender.kind, threads, peakUsedBytes: null, peakFootprintBytes: null };
  const failed = (error: string): GlibcThreadRow => ({ ...base, iterations: 0, wallSeconds: 0, perSecond: 0, error });
  const native = buildNativeBench();
  if ('missing' in native) return failed(native.missing);
  try {
    const { stdout } = await run(native.binary, [String(threads), String(durationSeconds)]);
    const parsed = parseNativeOutput(stdout);
    return {
      ...base,
      iterations: parsed.iterations,
      wallSeconds: parsed.wallSeconds,
      perSecond: parsed.iterations / parsed.wallSeconds,
      note: 'the C port run against the C library malloc',
      mimallocBenchLine: `${parsed.iterations} iterations`,
      upstream: parsed.upstream,
    };
  } catch (error) {
    return failed(`the native benchmark failed: ${(error as Error).message}`);
  }
}

/**
 * Reads the three lines the C port prints.
 * @throws Error when the output does not have them
 */
export function parseNativeOutput(stdout: string): { upstream: GlibcUpstreamJson; iterations: number; wallSeconds: number } {
  const lines = stdout.trim().split('\n');
  const iterationsMatch = /^(\d+) iterations$/.exec(lines[1] ?? '');
  const wallMatch = /^# wall ([\d.]+)$/.exec(lines[2] ?? '');
  if (lines.length !== 3 || iterationsMatch === null || wallMatch === null) {
    throw new Error(`unexpected output from the native benchmark: ${stdout.slice(0, 200)}`);
  }
  return {
    upstream: JSON.parse(lines[0]!) as GlibcUpstreamJson,
    iterations: Number(iterationsMatch[1]),
    wallSeconds: Number(wallMatch[1]),
  };
}
