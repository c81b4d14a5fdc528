/**
 * The list of heaplab's own traces the playground offers (traces/index.json beside the
 * page, written when the page is bundled: bundle-playground.ts), and reading a trace: one of
 * those, fetched from the server, or a file the person picks, read in the page.
 */

import { parseTrace, type Trace } from '@heaplab/core';

/** The directory beside the page that holds the traces and their index. */
export const TRACE_DIRECTORY = 'traces';
/** The index's file name in that directory. */
export const TRACE_INDEX = 'index.json';

/** One trace of the index. */
export interface TraceEntry {
  file: string;
  description: string;
  requests: number;
  threads: number;
}

/** The index, as the page fetches it. */
export async function fetchTraceIndex(): Promise<TraceEntry[]> {
  const response = await fetch(`${TRACE_DIRECTORY}/${TRACE_INDEX}`);
  if (!response.ok) throw new Error(`cannot load the trace list: ${response.status} ${response.statusText}`);
  return (await response.json()) as TraceEntry[];
}

/**
 * One of the listed traces, fetched and read.
 * @throws AllocError `InvalidParam` when it is no trace
 */
export async function fetchTrace(file: string): Promise<Trace> {
  const response = await fetch(`${TRACE_DIRECTORY}/${encodeURIComponent(file)}`);
  if (!response.ok) throw new Error(`cannot load trace ${file}: ${response.status} ${response.statusText}`);
  return parseTrace(await response.text(), file);
}

/**
 * A trace file the person picked.
 * @throws AllocError `InvalidParam` naming the file and line when it is no trace
 */
export async function readTraceFile(file: Blob & { name: string }): Promise<Trace> {
  return parseTrace(await file.text(), file.name);
}
