/// <reference lib="dom" />
/**
 * One backend's side of a play: its heap (made on the page, whose handle is trace thread 0),
 * a web worker attached to the same heap for each further thread of the trace, and the
 * shared request and id tables (requests.ts). `advance` performs the next requests in the
 * trace's order, handing each run of one thread's requests to that thread, and waiting for
 * it before the next run: the heap sees the trace's order exactly, and a worker's free of a
 * block the page allocated is a real remote free.
 */

import { GlobalAllocator, HEAP_ALIGN, minimumHeapBytes, type Trace, traceFigures } from '@heaplab/core';

import type { BackendChoice } from './backends.js';
import { endOfThreadRun, packTrace, performRequests, type PlayBuffers, type StretchOutcome, threadOfRequest } from './requests.js';
import type { FromHeapWorker, ToHeapWorker } from './worker-protocol.js';

/** The least heap a play gets: 4 MiB, the heap's unit, so the map shows small traces large. */
const MIN_PLAY_HEAP_BYTES = HEAP_ALIGN;
/** The heap is this many times the trace's peak payload (headers, size classes, fragmentation). */
const PLAY_HEAP_FACTOR = 4;
/** A worker that does not answer within this long has hung; the play stops saying so. */
const WORKER_REPLY_LIMIT_MS = 10_000;

/** A web worker attached to the session's heap, with its pending reply. */
class HeapWorkerLink {
  private readonly worker = new Worker(new URL('./heap-worker.js', import.meta.url), { type: 'module' });
  private pending: { resolve: (reply: FromHeapWorker) => void; reject: (error: Error) => void } | null = null;

  constructor(readonly thread: number) {
    this.worker.onmessage = (event: MessageEvent<FromHeapWorker>) => this.settle(event.data, null);
    this.worker.onerror = (event) => this.settle(null, new Error(`heap worker of thread ${thread} failed: ${event.message}`));
  }

  private settle(reply: FromHeapWorker | null, error: Error | null): void {
    const pending = this.pending;
    this.pending = null;
    if (pending === null) return;
    if (error !== null) pending.reject(error);
    else if (reply!.kind === 'failed') pending.reject(new Error(`heap worker of thread ${this.thread}: ${reply!.message}`));
    else pending.resolve(reply!);
  }

  /** Sends `message` and waits for its reply (bounded by `WORKER_REPLY_LIMIT_MS`). */
  ask(message: ToHeapWorker): Promise<FromHeapWorker> {
    if (this.pending !== null) return Promise.reject(new Error(`heap worker of thread ${this.thread} is busy`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.settle(null, new Error(`heap worker of thread ${this.thread} did not answer in ${WORKER_REPLY_LIMIT_MS} ms`)),
        WORKER_REPLY_LIMIT_MS,
      );
      this.pending = {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.worker.postMessage(message);
    });
  }

  terminate(): void {
    this.worker.terminate();
  }
}

/** The heap a play of `trace` on `choice` gets (see the constants above). */
export function playHeapBytes(choice: BackendChoice, trace: Trace): number {
  const figures = traceFigures(trace);
  const largestBlock = trace.requests.reduce((largest, request) => (request.op === 'f' ? largest : Math.max(largest, request.bytes)), 0);
  const wanted = Math.max(
    MIN_PLAY_HEAP_BYTES,
    PLAY_HEAP_FACTOR * figures.peakPayloadBytes,
    minimumHeapBytes(choice.descriptor, { threads: Math.max(1, trace.threads), largestBlock }),
  );
  return Math.ceil(wanted / HEAP_ALIGN) * HEAP_ALIGN;
}

/** One backend's heap, workers and progress through the trace. */
export class HeapSession {
  /** Requests performed so far. */
  done = 0;
  /** What the requests performed so far did, over all threads. */
  readonly outcome: StretchOutcome = { failed: 0, remoteFrees: 0 };

  private constructor(
    readonly choice: BackendChoice,
    readonly trace: Trace,
    /** The page's handle: trace thread 0. */
    readonly heap: GlobalAllocator,
    private readonly play: PlayBuffers,
    /** Workers by trace thread; index 0 (the page) is empty. */
    private readonly workers: (HeapWorkerLink | null)[],
  ) {}

  /** Makes the heap and starts and attaches a worker per trace thread after the first. */
  static async open(choice: BackendChoice, trace: Trace): Promise<HeapSession> {
    const heap = GlobalAllocator.create({ backend: choice.descriptor, options: choice.options, heapBytes: playHeapBytes(choice, trace), checked: false });
    const play = packTrace(trace);
    const workers: (HeapWorkerLink | null)[] = [null];
    try {
      for (let thread = 1; thread < trace.threads; thread++) {
        const link = new HeapWorkerLink(thread);
        workers.push(link);
        await link.ask({ kind: 'attach', heap: heap.buffer, play });
      }
    } catch (error) {
      for (const link of workers) link?.terminate();
      heap.detach();
      throw error;
    }
    return new HeapSession(choice, trace, heap, play, workers);
  }

  /** Whether every request has been performed. */
  get finished(): boolean {
    return this.done >= this.trace.requests.length;
  }

  /** Performs up to `count` more requests, each by its own thread, in the trace's order. */
  async advance(count: number): Promise<void> {
    const to = Math.min(this.trace.requests.length, this.done + count);
    while (this.done < to) {
      const from = this.done;
      const end = endOfThreadRun(this.play, from, to);
      const thread = threadOfRequest(this.play, from);
      let outcome: StretchOutcome;
      if (thread === 0) {
        outcome = performRequests(this.heap, this.play, from, end);
      } else {
        const reply = await this.workers[thread]!.ask({ kind: 'run', from, to: end });
        if (reply.kind !== 'ran') throw new Error(`heap worker of thread ${thread} answered ${reply.kind} to run`);
        outcome = reply.outcome;
      }
      this.outcome.failed += outcome.failed;
      this.outcome.remoteFrees += outcome.remoteFrees;
      this.done = end;
    }
  }

  /**
   * Detaches the workers and ends them, then detaches the page's handle. A worker that fails
   * to detach is still ended, and so are the ones after it; the first failure is thrown last.
   */
  async close(): Promise<void> {
    let firstFailure: unknown;
    for (const link of this.workers) {
      if (link === null) continue;
      try {
        await link.ask({ kind: 'detach' });
      } catch (error) {
        firstFailure ??= error;
      } finally {
        link.terminate();
      }
    }
    this.heap.detach();
    if (firstFailure !== undefined) throw firstFailure;
  }
}
