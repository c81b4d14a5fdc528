/**
 * Writing a trace request by request, for the generators of heaplab's trace set: ids are
 * handed out in order of allocation and never reused, as a recording's are, and every
 * request is checked against the id's state as it is made, so a generator cannot write an
 * impossible trace.
 */

import { checkTrace, type Trace, type TraceRequest, traceFigures } from '@heaplab/core';

/** What an allocation may add to its size. */
export interface AllocExtras {
  /** The thread making the request (0 by default). */
  thread?: number;
  /** A power of two above 8, or 0 (the default) for the heap's minimum alignment. */
  align?: number;
  /** A calloc: the block's bytes are zeroed. */
  zero?: boolean;
}

/** A trace being written. */
export class TraceBuilder {
  private readonly requests: TraceRequest[] = [];
  private readonly live: boolean[] = [];
  private threads = 1;

  /** Allocates `bytes`; returns the new id. */
  alloc(bytes: number, extras: AllocExtras = {}): number {
    const id = this.live.length;
    const thread = this.threadOf(extras.thread);
    this.live.push(true);
    this.requests.push({ op: 'a', id, bytes, thread, align: extras.align ?? 0, zero: extras.zero ?? false });
    return id;
  }

  /** Resizes id `id`'s block to `bytes`. */
  realloc(id: number, bytes: number, thread?: number): void {
    this.mustBeLive(id, 'r');
    this.requests.push({ op: 'r', id, bytes, thread: this.threadOf(thread) });
  }

  /** Frees id `id`'s block. */
  free(id: number, thread?: number): void {
    this.mustBeLive(id, 'f');
    this.live[id] = false;
    this.requests.push({ op: 'f', id, thread: this.threadOf(thread) });
  }

  /** Whether id `id`'s block is live. */
  isLive(id: number): boolean {
    return this.live[id] === true;
  }

  /** The trace written so far, its suggested heap size its peak payload; checked with `checkTrace`. */
  build(description: string): Trace {
    const trace: Trace = { ids: this.live.length, threads: this.threads, heapBytes: 0, weight: 1, description, requests: [...this.requests] };
    trace.heapBytes = traceFigures(trace).peakPayloadBytes;
    checkTrace(trace, 'generated trace');
    return trace;
  }

  private threadOf(thread: number | undefined): number {
    const number = thread ?? 0;
    if (number + 1 > this.threads) this.threads = number + 1;
    return number;
  }

  private mustBeLive(id: number, op: string): void {
    if (this.live[id] !== true) throw new Error(`a generator asked for '${op}' of id ${id}, which has no live block`);
  }
}
