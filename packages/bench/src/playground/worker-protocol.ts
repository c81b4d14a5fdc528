/**
 * The messages between the page and a heap worker (heap-worker.ts). One worker plays one
 * trace thread on one heap: it attaches when told, performs the stretches of requests it is
 * sent, and detaches before the page ends it.
 */

import type { PlayBuffers, StretchOutcome } from './requests.js';

/** Page → worker. */
export type ToHeapWorker =
  /** Attach to the heap in `heap` (its backend is one of backends.ts's descriptors). */
  | { kind: 'attach'; heap: SharedArrayBuffer; play: PlayBuffers }
  /** Perform requests `[from, to)`, all of this worker's thread. */
  | { kind: 'run'; from: number; to: number }
  /** Give the heap thread slot back. */
  | { kind: 'detach' };

/** Worker → page: one reply per message, in order. */
export type FromHeapWorker =
  | { kind: 'attached'; threadId: number }
  | { kind: 'ran'; outcome: StretchOutcome }
  | { kind: 'detached' }
  | { kind: 'failed'; message: string };
