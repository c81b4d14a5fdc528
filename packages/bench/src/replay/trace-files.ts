/**
 * Finding and reading the traces `heaplab replay` is given: files (`.rep`, `.txt`, `.jsonl`)
 * or directories (their trace files, sorted by name), and the heap each trace gets when no
 * size is given.
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

import { AllocError, HEAP_ALIGN, MAX_HEAP_BYTES, MiB, parseTrace, type Trace, traceFigures } from '@heaplab/core';

/** The endings of trace files: CS:APP's `.rep` (and `.txt`), heaplab's `.jsonl`. */
export const TRACE_EXTENSIONS: readonly string[] = ['.rep', '.txt', '.jsonl'];

/** The smallest heap a trace gets by default. */
export const MIN_REPLAY_HEAP_BYTES = 16 * MiB;
/**
 * A trace's default heap is this many times the larger of its suggested heap and its peak
 * payload: room for a backend that wastes three quarters of its memory still to be valid, so
 * a poor utilization shows as a poor score rather than as running out of memory.
 */
export const REPLAY_HEAP_FACTOR = 4;

/** One trace, read. */
export interface TraceFile {
  /** The file's name (the table's label). */
  name: string;
  /** The path as found. */
  path: string;
  trace: Trace;
}

/**
 * The trace files of `paths`, in order: a file as it is, a directory's trace files sorted
 * by name.
 * @throws AllocError `InvalidParam` for a path that cannot be read, a file that is not a
 *   trace (the parse error, with file and line), or a directory without trace files
 */
export function readTraceFiles(paths: readonly string[]): TraceFile[] {
  return paths.flatMap((path) => {
    let directory: boolean;
    try {
      directory = statSync(path).isDirectory();
    } catch (error) {
      throw new AllocError('InvalidParam', `cannot read ${path}: ${(error as Error).message}`);
    }
    if (!directory) return [readTraceFile(path)];
    const names = readdirSync(path)
      .filter((name) => TRACE_EXTENSIONS.some((extension) => name.endsWith(extension)))
      .sort();
    if (names.length === 0) throw new AllocError('InvalidParam', `${path} holds no trace files (${TRACE_EXTENSIONS.join(', ')})`);
    return names.map((name) => readTraceFile(join(path, name)));
  });
}

function readTraceFile(path: string): TraceFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new AllocError('InvalidParam', `cannot read ${path}: ${(error as Error).message}`);
  }
  return { name: basename(path), path, trace: parseTrace(text, path) };
}

/**
 * The heap a trace gets when no size is given: `REPLAY_HEAP_FACTOR` times the larger of its
 * suggested heap and its peak payload, at least `MIN_REPLAY_HEAP_BYTES`, rounded up to the
 * heap's 4 MiB unit and at most the largest heap.
 */
export function defaultReplayHeapBytes(trace: Trace): number {
  const wanted = Math.max(MIN_REPLAY_HEAP_BYTES, REPLAY_HEAP_FACTOR * trace.heapBytes, REPLAY_HEAP_FACTOR * traceFigures(trace).peakPayloadBytes);
  return Math.min(Math.ceil(wanted / HEAP_ALIGN) * HEAP_ALIGN, MAX_HEAP_BYTES);
}
