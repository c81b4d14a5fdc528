/**
 * Replaying one trace on one backend, as CS:APP's malloc lab driver does: first a validity
 * pass that checks every block (replay-thread.ts) and, at the end, every block still live, the
 * heap's `check()` and its walk; then, when the trace was valid, `repeat` timed passes, each
 * on a fresh heap pre-faulted before the clock starts.
 *
 * A trace of T threads is replayed by T workers on one heap, each doing its own thread's
 * requests in the trace's order and waiting, through the order table (order-table.ts), for
 * the request before on the same id when another thread made it; in the validity pass they
 * follow the trace's global order exactly, so the footprint is that of the trace's own
 * interleaving, the one its peak payload is measured in. A one-thread trace runs in
 * the calling thread (a worker's start-up would be most of a short trace's time).
 */

import type { Worker } from 'node:worker_threads';

import { AllocError, type BackendSpec, type GlobalAllocator, hex, spawnWorker, type Trace, traceFigures } from '@heaplab/core';

import { createBackendHeap } from '../contenders/backends.js';
import { firstBadByte } from './block-signature.js';
import { OrderTable } from './order-table.js';
import { packRequests } from './replay-requests.js';
import { type PassKind, type ReplayFailure, runThreadPass, type ThreadPassOutcome } from './replay-thread.js';
import type { ReplayWorkerReply, ReplayWorkerTask } from './replay-worker.js';

/** How to replay. */
export interface ReplayOptions {
  /** Arena bytes of each pass's heap (a multiple of 4 MiB). */
  heapBytes: number;
  /** Timed passes (their median is the figure). */
  repeat: number;
}

/** One timed pass. */
export interface TimedPass {
  /** From when every thread had started to when the last one ended. */
  seconds: number;
  /**
   * CPU time of the whole process over the same span (`process.cpuUsage()`: every thread's,
   * workers included, since Node has no per-thread CPU clock), in seconds.
   */
  cpuSeconds: number;
}

/** One trace replayed on one backend. */
export interface TraceReplay {
  valid: boolean;
  /** The first request the validity pass found wrong (or the end-of-trace check); null when valid. */
  failure: ReplayFailure | null;
  /** Requests in the trace. */
  operations: number;
  threads: number;
  heapBytes: number;
  /** The most payload live at once, in the trace's order (`traceFigures`). */
  peakPayloadBytes: number;
  /** The validity pass's high water: the highest end of a usable block, from the arena's start; null when invalid. */
  footprintBytes: number | null;
  /** `peakPayloadBytes / footprintBytes`; null when invalid. */
  utilization: number | null;
  /** The timed passes (none when invalid). */
  passes: TimedPass[];
  /** Median seconds of the timed passes; null when invalid. */
  seconds: number | null;
  /** Median CPU seconds of the timed passes; null when invalid. */
  cpuSeconds: number | null;
  /** `operations / seconds`; null when invalid. */
  opsPerSecond: number | null;
}

/** The request index of a failure found after the last request (the end-of-trace checks). */
export const END_OF_TRACE_OP = 'end';

/**
 * Replays `trace` on the backend of `spec`.
 * @throws AllocError `InvalidParam` for a repeat below 1, or when the heap cannot be made
 *   (bad options or size); every failure of the backend itself is a `failure` in the
 *   result instead
 */
export async function replayTrace(trace: Trace, spec: BackendSpec, options: ReplayOptions): Promise<TraceReplay> {
  if (!Number.isSafeInteger(options.repeat) || options.repeat < 1) {
    throw new AllocError('InvalidParam', `repeat is the number of timed passes, a whole number of 1 or more, not ${String(options.repeat)}`);
  }
  const figures = traceFigures(trace);
  const packed = packRequests(trace);
  const result: TraceReplay = {
    valid: false,
    failure: null,
    operations: trace.requests.length,
    threads: trace.threads,
    heapBytes: options.heapBytes,
    peakPayloadBytes: figures.peakPayloadBytes,
    footprintBytes: null,
    utilization: null,
    passes: [],
    seconds: null,
    cpuSeconds: null,
    opsPerSecond: null,
  };
  const checked = await runPass(trace, packed, spec, 'checked', options.heapBytes);
  if (checked.failure !== null) {
    result.failure = checked.failure;
    return result;
  }
  result.valid = true;
  result.footprintBytes = checked.footprintBytes;
  result.utilization = checked.footprintBytes > 0 ? figures.peakPayloadBytes / checked.footprintBytes : figures.peakPayloadBytes === 0 ? 1 : 0;
  for (let pass = 0; pass < options.repeat; pass++) {
    const timed = await runPass(trace, packed, spec, 'timed', options.heapBytes);
    if (timed.failure !== null) {
      // A timed pass fails where the checked one did not only when the backend is not
      // deterministic: still a wrong answer, so the trace is invalid.
      return { ...result, valid: false, footprintBytes: null, utilization: null, failure: timed.failure };
    }
    result.passes.push({ seconds: timed.seconds, cpuSeconds: timed.cpuSeconds });
  }
  result.seconds = median(result.passes.map((pass) => pass.seconds));
  result.cpuSeconds = median(result.passes.map((pass) => pass.cpuSeconds));
  result.opsPerSecond = result.seconds > 0 ? result.operations / result.seconds : null;
  return result;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >>> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

interface PassResult {
  failure: ReplayFailure | null;
  footprintBytes: number;
  seconds: number;
  cpuSeconds: number;
}

/** One pass on a fresh, pre-faulted heap. */
async function runPass(trace: Trace, packed: Int32Array[], spec: BackendSpec, kind: PassKind, heapBytes: number): Promise<PassResult> {
  const heap = createBackendHeap(spec, heapBytes);
  try {
    heap.prefault();
    const table = OrderTable.create(trace.ids, trace.threads);
    const outcomes =
      trace.threads === 1 ? [runThreadPass(heap, { kind, thread: 0, requests: packed[0]!, table })] : await runInWorkers(heap, packed, table, kind);
    const failure = outcomes.map((outcome) => outcome.failure).find((found) => found !== null) ?? null;
    const started = outcomes.reduce((first, outcome) => (outcome.startedAt < first.startedAt ? outcome : first));
    const ended = outcomes.reduce((last, outcome) => (outcome.endedAt > last.endedAt ? outcome : last));
    return {
      failure: failure ?? (kind === 'checked' ? endOfTraceFailure(trace, heap, table) : null),
      footprintBytes: footprintOf(heap, outcomes),
      seconds: (ended.endedAt - started.startedAt) / 1000,
      cpuSeconds: (ended.cpuEndedMicros - started.cpuStartedMicros) / 1e6,
    };
  } finally {
    heap.detach();
  }
}

/**
 * The high-water footprint: in each pool (one per arena), from the pool's start to one past
 * the highest usable byte any thread was handed there, added up. With one arena it is the
 * reach from the arena's start; with several, each thread's home slice counts from its own
 * start, not from the first slice's (docs/replay.md).
 */
function footprintOf(heap: GlobalAllocator, outcomes: readonly ThreadPassOutcome[]): number {
  let bytes = 0;
  heap.pools().forEach((pool, index) => {
    const highWater = Math.max(0, ...outcomes.map((outcome) => outcome.highWaters[index] ?? 0));
    if (highWater > 0) bytes += highWater - pool.start;
  });
  return bytes;
}

/** Runs each thread's share in a worker of its own; resolves with every thread's outcome. */
async function runInWorkers(heap: GlobalAllocator, packed: Int32Array[], table: OrderTable, kind: PassKind): Promise<ThreadPassOutcome[]> {
  const replies = packed.map((requests, thread) => {
    const task: ReplayWorkerTask = {
      kind,
      thread,
      threads: packed.length,
      requests,
      heapBuffer: heap.buffer,
      tableBuffer: table.buffer,
      backendModuleUrl: heap.backendDescriptor.moduleUrl,
    };
    const { worker, reply } = spawnReplayWorker(task);
    heap.watchWorker(worker);
    return reply;
  });
  const settled = await Promise.all(
    replies.map((reply) =>
      reply.then((answer) => {
        // A worker that died cannot have stopped the others itself.
        if (!answer.ok) table.stop();
        return answer;
      }),
    ),
  );
  return settled.map((answer, thread): ThreadPassOutcome => {
    if (answer.ok) return answer.outcome;
    const failure: ReplayFailure = { index: -1, op: '-', id: -1, thread, message: `the worker of thread ${thread} failed: ${answer.message}` };
    return { requests: 0, highWaters: [], failure, startedAt: Infinity, endedAt: -Infinity, cpuStartedMicros: 0, cpuEndedMicros: 0 };
  });
}

const fromSource = import.meta.url.endsWith('.ts');

/** Starts a replay worker: on replay-worker.js when built, through core's TypeScript bootstrap from source. */
function spawnReplayWorker(task: ReplayWorkerTask): { worker: Worker; reply: Promise<ReplayWorkerReply> } {
  const worker = spawnWorker(new URL(fromSource ? './replay-worker.ts' : './replay-worker.js', import.meta.url), task);
  const reply = new Promise<ReplayWorkerReply>((resolve) => {
    worker.once('message', resolve);
    worker.once('error', (error) => resolve({ ok: false, message: error.message }));
    worker.once('exit', (code) => resolve({ ok: false, message: `exited with code ${code} before replying` }));
  });
  return { worker, reply };
}

/**
 * The checks after the last request: every block still live keeps its signature and none
 * overlaps another (blocks of different threads were never compared while the trace ran),
 * `check()` passes, and the walk, when the backend has one, shows exactly the live blocks.
 */
function endOfTraceFailure(trace: Trace, heap: GlobalAllocator, table: OrderTable): ReplayFailure | null {
  const fail = (message: string): ReplayFailure => ({ index: trace.requests.length, op: END_OF_TRACE_OP, id: -1, thread: -1, message });
  const liveIds = new Set<number>();
  for (const request of trace.requests) {
    if (request.op === 'f') liveIds.delete(request.id);
    else liveIds.add(request.id);
  }
  const blocks: { id: number; address: number; usable: number }[] = [];
  try {
    for (const id of liveIds) {
      const address = table.address(id);
      const bytes = table.bytes(id);
      const bad = firstBadByte(heap.memory.u8, heap.memory.u32, address, bytes, id);
      if (bad !== -1) return { ...fail(`id ${id}'s live block ${hex(address)} was overwritten at byte ${bad} of ${bytes}`), id };
      blocks.push({ id, address, usable: heap.usableSize(address) });
    }
    blocks.sort((a, b) => a.address - b.address);
    for (let at = 1; at < blocks.length; at++) {
      const before = blocks[at - 1]!;
      const block = blocks[at]!;
      if (before.address + before.usable > block.address) {
        return { ...fail(`id ${before.id}'s live block ${hex(before.address)} overlaps id ${block.id}'s ${hex(block.address)}`), id: block.id };
      }
    }
    heap.check();
    if (heap.supportsWalk()) {
      const walked = new Map<number, number>();
      for (const region of heap.walk()) if (region.kind === 'live') walked.set(region.address, region.bytes);
      for (const block of blocks) {
        const bytes = walked.get(block.address);
        if (bytes !== block.usable) {
          return {
            ...fail(
              `the walk shows ${bytes === undefined ? 'no live region' : `a live region of ${bytes} bytes`} at id ${block.id}'s block ${hex(block.address)} (usable ${block.usable})`,
            ),
            id: block.id,
          };
        }
      }
      if (walked.size !== blocks.length) return fail(`the walk shows ${walked.size} live regions; the trace left ${blocks.length} blocks live`);
    }
  } catch (error) {
    return fail(`${error instanceof Error ? error.message : String(error)}`);
  }
  return null;
}
