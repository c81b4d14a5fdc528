/**
 * robson's `native` rows: native/robson.c, the same adversary in C, run against a C
 * allocator (run/native-program.ts builds and runs it). Without a compiler or the
 * allocator's library the row says so and the bench goes on.
 */

import type { NativeAllocatorName } from '../../contenders/native-allocators.js';
import { runNativeProgram } from '../../run/native-program.js';
import type { RobsonPhase } from './adversary.js';

/** The port's file name under native/, without `.c`. */
export const ROBSON_PROGRAM = 'robson';

/** Seconds after which a port run is killed (a run takes milliseconds). */
const NATIVE_TIMEOUT_SECONDS = 60;

/** What one run of the port measured. */
export interface NativeRobsonRun {
  phases: RobsonPhase[];
  operations: number;
  /** Highest block end minus lowest block start. */
  spanBytes: number;
  /** Distinct 4 KiB pages blocks covered; null when the port's page set overflowed. */
  touchedPages: number | null;
  peakLiveBytes: number;
  /** The adversary's time. */
  seconds: number;
  cpuSeconds: number;
  /** VmHWM at the end, and before the first malloc. */
  maxRssKiB: number;
  baselineRssKiB: number;
}

/**
 * Runs the port once.
 * @throws Error when the port cannot be built or run, or prints something unexpected
 */
export async function runNativeRobson(
  allocator: NativeAllocatorName,
  params: { liveLimitBytes: number; minBlockBytes: number; maxBlockBytes: number },
  fill: 'memset' | 'bytes',
): Promise<NativeRobsonRun> {
  const run = await runNativeProgram(ROBSON_PROGRAM, [String(params.liveLimitBytes), String(params.minBlockBytes), String(params.maxBlockBytes)], {
    allocator,
    timeoutSeconds: NATIVE_TIMEOUT_SECONDS,
    fill,
  });
  return { ...parseNativeRobsonOutput(run.lines), seconds: run.wallSeconds, cpuSeconds: run.cpuSeconds, maxRssKiB: run.maxRssKiB };
}

const PHASE_LINE =
  /^phase (\d+) allocated (\d+) live_after_alloc (\d+) span_after_alloc (\d+) overhead (\d+) freed (\d+) live_after_free (\d+) largest_hole (\d+)$/;
const FIGURE_LINE = /^(operations|span|touched_pages|peak_live|baseline_rss_kib) (\d+|unknown)$/;

/**
 * Reads the port's own lines (the trailer already taken off).
 * @throws Error when a line is not one the port prints, or a figure is missing
 */
export function parseNativeRobsonOutput(lines: readonly string[]): Omit<NativeRobsonRun, 'seconds' | 'cpuSeconds' | 'maxRssKiB'> {
  const phases: RobsonPhase[] = [];
  const figures = new Map<string, number | null>();
  for (const line of lines) {
    const phase = PHASE_LINE.exec(line);
    if (phase !== null) {
      const [blockBytes, allocated, liveAfterAllocBytes, spanAfterAllocBytes, overheadBytes, freed, liveAfterFreeBytes, largestHoleBytes] = phase
        .slice(1)
        .map(Number) as [number, number, number, number, number, number, number, number];
      phases.push({ blockBytes, allocated, liveAfterAllocBytes, spanAfterAllocBytes, overheadBytes, freed, liveAfterFreeBytes, largestHoleBytes });
      continue;
    }
    const figure = FIGURE_LINE.exec(line);
    if (figure === null) throw new Error(`unexpected output from the native robson port: ${line.slice(0, 200)}`);
    figures.set(figure[1]!, figure[2] === 'unknown' ? null : Number(figure[2]));
  }
  const required = (key: string): number => {
    const value = figures.get(key);
    if (value === undefined || value === null) throw new Error(`the native robson port printed no '${key}' figure`);
    return value;
  };
  if (phases.length === 0) throw new Error('the native robson port printed no phase');
  if (!figures.has('touched_pages')) throw new Error("the native robson port printed no 'touched_pages' figure");
  return {
    phases,
    operations: required('operations'),
    spanBytes: required('span'),
    touchedPages: figures.get('touched_pages') ?? null,
    peakLiveBytes: required('peak_live'),
    baselineRssKiB: required('baseline_rss_kib'),
  };
}
