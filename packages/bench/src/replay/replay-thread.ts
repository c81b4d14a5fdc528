/**
 * One thread's share of a replay pass: its requests, in the trace's order, on its own handle
 * of the heap. The same code runs in the calling thread (a one-thread trace) and in each
 * worker (replay-worker.ts).
 *
 * Two kinds of pass:
 * - **checked** (the validity pass): every block is checked as it is handed out (non-zero,
 *   aligned, inside the arena, usable size at least what was asked, no overlap with this
 *   thread's live blocks), signed, and its signature read back before it is resized or
 *   freed; calloc'ed blocks must read zero;
 * - **timed**: the same calls with only the cheap checks (non-zero, inside the arena), timed
 *   from when every thread has started to when this one ends.
 *
 * With several threads, the checked pass runs the requests in the trace's global order, one
 * at a time (order-table.ts), so its footprint is the trace's own interleaving's; the timed
 * pass keeps only the order per id, so the threads really run at once.
 *
 * The first failure ends the thread's pass and names the request.
 */

import { type GlobalAllocator, hex, MIN_ALIGN } from '@heaplab/core';

import { firstBadByte, firstNonZeroByte, signBlock } from './block-signature.js';
import { LiveBlocks } from './live-blocks.js';
import { type OrderTable, ReplayStopped } from './order-table.js';
import {
  OP_CALLOC,
  OP_FREE,
  OP_LETTERS,
  OP_MALLOC,
  OP_REALLOC,
  REQUEST_ALIGN,
  REQUEST_BYTES,
  REQUEST_ID,
  REQUEST_INDEX,
  REQUEST_OP,
  REQUEST_ORDINAL,
  REQUEST_WORDS,
} from './replay-requests.js';

export type PassKind = 'checked' | 'timed';

/** The first request a pass could not do right, and why. */
export interface ReplayFailure {
  /** The request's place in the trace, 0-based. */
  index: number;
  /** Its operation, as the trace spells it: a, c, r or f. */
  op: string;
  id: number;
  thread: number;
  message: string;
}

/** What one thread's pass ended with. */
export interface ThreadPassOutcome {
  /** Requests done. */
  requests: number;
  /**
   * Per pool of the heap (`heap.pools()`, one per arena with the `arenas` option): one past
   * the highest usable byte of any block handed out in it (checked passes); 0 when none.
   */
  highWaters: number[];
  /** This thread's failure; null when it had none (or stopped because another thread failed). */
  failure: ReplayFailure | null;
  /** When the timed part began and ended, in milliseconds since the epoch (comparable across threads). */
  startedAt: number;
  endedAt: number;
  /** The whole process's CPU time (user + system, microseconds) at those two moments. */
  cpuStartedMicros: number;
  cpuEndedMicros: number;
}

/** One thread's pass. */
export interface ThreadPass {
  kind: PassKind;
  thread: number;
  /** This thread's packed requests (replay-requests.ts). */
  requests: Int32Array;
  table: OrderTable;
}

/** Process CPU time in microseconds: in a worker too, `process.cpuUsage()` counts every thread of the process. */
function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** A request's failure, thrown inside the loop and caught once around it. */
class RequestFailure extends Error {}

/** Runs `pass` on `heap`; never throws for what the allocator does (that is a failure in the outcome). */
export function runThreadPass(heap: GlobalAllocator, pass: ThreadPass): ThreadPassOutcome {
  const { requests, table, thread } = pass;
  const shared = table.threads > 1;
  const count = requests.length / REQUEST_WORDS;
  const outcome: ThreadPassOutcome = { requests: 0, highWaters: [], failure: null, startedAt: 0, endedAt: 0, cpuStartedMicros: 0, cpuEndedMicros: 0 };
  let at = 0;
  try {
    if (shared) table.startTogether();
    outcome.startedAt = performance.timeOrigin + performance.now();
    outcome.cpuStartedMicros = cpuMicros();
    if (pass.kind === 'checked') outcome.highWaters = checkedLoop(heap, pass, (position) => (at = position));
    else timedLoop(heap, requests, table, shared, thread, (position) => (at = position));
    outcome.endedAt = performance.timeOrigin + performance.now();
    outcome.cpuEndedMicros = cpuMicros();
    outcome.requests = count;
  } catch (error) {
    outcome.requests = at / REQUEST_WORDS;
    if (!(error instanceof ReplayStopped)) {
      table.stop();
      outcome.failure = {
        index: requests[at + REQUEST_INDEX] ?? -1,
        op: OP_LETTERS[requests[at + REQUEST_OP] ?? OP_MALLOC]!,
        id: requests[at + REQUEST_ID] ?? -1,
        thread,
        message: error instanceof Error ? error.message : String(error),
      };
    }
  }
  return outcome;
}

/**
 * The timed loop: as few instructions around each call as the order and the cheap checks
 * need. `reached` is told where the loop is only when a request fails (kept out of the loop).
 */
function timedLoop(heap: GlobalAllocator, requests: Int32Array, table: OrderTable, shared: boolean, thread: number, reached: (at: number) => void): void {
  const { arenaStart, arenaEnd } = heap;
  let at = 0;
  try {
    for (; at < requests.length; at += REQUEST_WORDS) {
      const op = requests[at + REQUEST_OP]!;
      const id = requests[at + REQUEST_ID]!;
      const ordinal = requests[at + REQUEST_ORDINAL]!;
      if (shared) table.awaitTurn(id, ordinal);
      if (op === OP_FREE) {
        heap.free(table.address(id));
      } else {
        const bytes = requests[at + REQUEST_BYTES]!;
        const align = requests[at + REQUEST_ALIGN]!;
        const address =
          op === OP_REALLOC
            ? heap.realloc(table.address(id), bytes)
            : op === OP_CALLOC
              ? zeroedBlock(heap, bytes, align)
              : align === MIN_ALIGN
                ? heap.malloc(bytes)
                : heap.alignedAlloc(align, bytes);
        if (address === 0) throw new RequestFailure(`ran out of memory: got 0 for ${bytes} bytes`);
        if (address < arenaStart || address + bytes > arenaEnd)
          throw new RequestFailure(`block ${hex(address)} of ${bytes} bytes is not inside the arena ${hex(arenaStart)}..${hex(arenaEnd)}`);
        table.setBlock(id, address, bytes);
      }
      if (shared) {
        table.finish(id, ordinal);
        table.progress(thread, at / REQUEST_WORDS + 1);
      }
    }
  } catch (error) {
    reached(at);
    throw error;
  }
}

/** calloc of `bytes` at `align`: the facade's calloc when the alignment is the default; else an aligned block zeroed here. */
export function zeroedBlock(heap: GlobalAllocator, bytes: number, align: number): number {
  if (align === MIN_ALIGN) return heap.calloc(1, bytes);
  const address = heap.alignedAlloc(align, bytes);
  if (address !== 0) heap.memory.u8.fill(0, address, address + bytes);
  return address;
}

/** The checked loop; returns the high water of each pool (one past the highest usable byte in it). */
function checkedLoop(heap: GlobalAllocator, pass: ThreadPass, reached: (at: number) => void): number[] {
  const { requests, table, thread } = pass;
  const shared = table.threads > 1;
  const { u8, u32 } = heap.memory;
  const { arenaStart, arenaEnd } = heap;
  const live = new LiveBlocks((id, stamp) => table.started(id) === stamp);
  const pools = heap.pools();
  const highWaters = pools.map(() => 0);

  /** Checks a block just handed out for `id` and lists it among this thread's live blocks. */
  const checkNew = (address: number, bytes: number, align: number, id: number, stamp: number): void => {
    if (address === 0) throw new RequestFailure(`ran out of memory: got 0 for ${bytes} bytes`);
    if (address % align !== 0) throw new RequestFailure(`block ${hex(address)} is not aligned to ${align}`);
    if (address < arenaStart || address >= arenaEnd)
      throw new RequestFailure(`block ${hex(address)} is not inside the arena ${hex(arenaStart)}..${hex(arenaEnd)}`);
    const usable = heap.usableSize(address);
    if (usable < bytes) throw new RequestFailure(`block ${hex(address)} has a usable size of ${usable}, below the ${bytes} bytes asked for`);
    if (address + usable > arenaEnd) throw new RequestFailure(`block ${hex(address)} of ${usable} usable bytes ends beyond the arena's end ${hex(arenaEnd)}`);
    const overlap = live.add(address, address + usable, id, stamp);
    if (overlap !== null) {
      throw new RequestFailure(
        `block ${hex(address)}..${hex(address + usable)} overlaps id ${overlap.id}'s live block ${hex(overlap.start)}..${hex(overlap.end)}`,
      );
    }
    const pool = pools.length === 1 ? 0 : pools.findIndex((candidate) => address >= candidate.start && address < candidate.start + candidate.size);
    if (pool >= 0 && address + usable > highWaters[pool]!) highWaters[pool] = address + usable;
  };

  /** Reads back `bytes` of `id`'s signature at `address`; `when` says at which point, for the message. */
  const verify = (address: number, bytes: number, id: number, when: string): void => {
    const bad = firstBadByte(u8, u32, address, bytes, id);
    if (bad !== -1) throw new RequestFailure(`id ${id}'s block ${hex(address)} was overwritten at byte ${bad} of ${bytes} (${when})`);
  };

  let at = 0;
  try {
    for (; at < requests.length; at += REQUEST_WORDS) {
      const op = requests[at + REQUEST_OP]!;
      const id = requests[at + REQUEST_ID]!;
      const bytes = requests[at + REQUEST_BYTES]!;
      const align = requests[at + REQUEST_ALIGN]!;
      const ordinal = requests[at + REQUEST_ORDINAL]!;
      const index = requests[at + REQUEST_INDEX]!;
      // The trace's global order implies the per-id one; both are kept, so the per-id entry stays as the timed pass uses it.
      if (shared) {
        table.awaitGlobalTurn(index);
        table.awaitTurn(id, ordinal);
      }
      // The stamp moves before the call: see live-blocks.ts.
      table.begin(id, ordinal);
      const stamp = ordinal + 1;
      if (op === OP_MALLOC || op === OP_CALLOC) {
        const address = op === OP_CALLOC ? zeroedBlock(heap, bytes, align) : align === MIN_ALIGN ? heap.malloc(bytes) : heap.alignedAlloc(align, bytes);
        checkNew(address, bytes, align, id, stamp);
        if (op === OP_CALLOC) {
          const dirty = firstNonZeroByte(u8, address, bytes);
          if (dirty !== -1) throw new RequestFailure(`calloc'ed block ${hex(address)} holds a non-zero byte at ${dirty}`);
        }
        signBlock(u8, u32, address, bytes, id);
        table.setBlock(id, address, bytes);
      } else {
        const old = table.address(id);
        const oldBytes = table.bytes(id);
        verify(old, oldBytes, id, op === OP_FREE ? 'before its free' : 'before its realloc');
        live.remove(old);
        if (op === OP_FREE) {
          heap.free(old);
        } else {
          const address = heap.realloc(old, bytes);
          checkNew(address, bytes, MIN_ALIGN, id, stamp);
          const kept = Math.min(oldBytes, bytes);
          verify(address, kept, id, 'the bytes realloc keeps');
          signBlock(u8, u32, address, bytes, id);
          table.setBlock(id, address, bytes);
        }
      }
      if (shared) {
        table.finish(id, ordinal);
        table.progress(thread, at / REQUEST_WORDS + 1);
        table.passGlobalTurn(index);
      }
    }
  } catch (error) {
    reached(at);
    throw error;
  }
  return highWaters;
}
