/**
 * The table through which the threads of one replay keep the trace's order per id: a
 * `SharedArrayBuffer` holding, for every id, the address of its block, its requested bytes
 * and two sequence words, plus a few control words.
 *
 * ```text
 *  word
 *  0                 stop: non-zero once a thread has failed (the others give up waiting)
 *  1                 waiters: threads inside Atomics.wait now (a publisher notifies only then)
 *  2                 ready: threads at the start line of a timed pass
 *  3                 stall limit: milliseconds without progress before a waiter gives up
 *  4                 next request: the global index of the request whose turn it is (validity pass)
 *  16 * (1 + t)      thread t's progress: requests it has done (its own 64-byte line)
 *  entriesStart + 4i id i: address | requested bytes | started | done
 * ```
 *
 * A request is the n-th on its id (its ordinal, replay-requests.ts) and may run once `done`
 * of its id has reached n: every request before it on that id has finished, whichever thread
 * made it. `started` is set to n + 1 just before the call and `done` just after.
 *
 * The validity pass goes further and follows the trace's global order exactly: a thread
 * whose next request has index i (in the whole trace) waits until `next request` is i, does
 * it, then stores i + 1. Its footprint then comes from the trace's own interleaving, the one
 * its peak live payload is computed in, so utilization is the same on every run. The timed
 * passes keep only the per-id order, to measure throughput with the threads running at once.
 *
 * Why this cannot deadlock: the trace's order is one total order that really happened, and
 * each thread's requests are in it in the thread's own order. Take the earliest request in
 * that order not yet done: every request before it is done, so the one before it on its id
 * is done (it may run) and so are its own thread's earlier requests (its thread has reached
 * it). So some request can always run, and the waits only ever end. A thread waits with a
 * timeout anyway and gives up when no thread has made progress for `STALL_LIMIT_MS`, so a
 * broken allocator (a lock never released) ends the replay with an error, never a hang.
 */

/** Word of the stop flag. */
export const STOP_WORD = 0;
/** Word counting the threads inside `Atomics.wait` on some id's `done`. */
export const WAITERS_WORD = 1;
/** Word counting the threads that have reached the start of a timed pass. */
export const READY_WORD = 2;
/** Word of the stall limit, in milliseconds (`STALL_LIMIT_MS` unless a test shortens it). */
export const STALL_LIMIT_WORD = 3;
/** Word of the global index of the next request to run, in a validity pass of several threads. */
export const NEXT_REQUEST_WORD = 4;
/** Words per thread's progress line, and per control line: 64 bytes keeps threads from sharing a cache line. */
export const LINE_WORDS = 16;

// --- one id's entry: ENTRY_WORDS words ---------------------------------------------------

/** The address of the id's live block (as an unsigned word). */
export const ENTRY_ADDRESS = 0;
/** The bytes the id's block was asked for: a thread that frees another's block checks this many. */
export const ENTRY_BYTES = 1;
/** Ordinal + 1 of the id's latest request that has begun. */
export const ENTRY_STARTED = 2;
/** Ordinal + 1 of the id's latest request that has finished. */
export const ENTRY_DONE = 3;
export const ENTRY_WORDS = 4;

/** How long one `Atomics.wait` lasts before the waiter looks at the stop flag and the progress again. */
export const WAIT_SLICE_MS = 50;
/** No thread making progress for this long means something is stuck: the replay gives up. */
export const STALL_LIMIT_MS = 10_000;

/**
 * How long a thread waits at the start line of a timed pass for the others: starting a worker
 * takes tens of milliseconds built and about a second from source, more on a loaded machine,
 * and no thread makes progress meanwhile, so the stall limit would be too tight.
 */
export const START_LIMIT_MS = 60_000;

/** Thrown in a thread that stops because another thread failed first (its own failure is the one reported). */
export class ReplayStopped extends Error {}

/** One replay's order table, over its shared buffer. */
export class OrderTable {
  readonly buffer: SharedArrayBuffer;
  readonly threads: number;
  private readonly words: Int32Array;
  private readonly entriesStart: number;

  /** A new table for `ids` ids and `threads` threads; waiters give up after `stallLimitMs` without progress. */
  static create(ids: number, threads: number, stallLimitMs = STALL_LIMIT_MS): OrderTable {
    const words = LINE_WORDS * (1 + threads) + ENTRY_WORDS * ids;
    const table = new OrderTable(new SharedArrayBuffer(words * Int32Array.BYTES_PER_ELEMENT), threads);
    table.words[STALL_LIMIT_WORD] = stallLimitMs;
    return table;
  }

  /** The table over a buffer made by `create` (in a worker). */
  constructor(buffer: SharedArrayBuffer, threads: number) {
    this.buffer = buffer;
    this.threads = threads;
    this.words = new Int32Array(buffer);
    this.entriesStart = LINE_WORDS * (1 + threads);
  }

  /** Word index of `id`'s entry. */
  entry(id: number): number {
    return this.entriesStart + id * ENTRY_WORDS;
  }

  /*
   * The address and bytes are plain reads and writes: the thread that writes them then
   * stores `done` atomically, and the thread that reads them has first loaded that `done`
   * atomically, which orders the plain accesses (JavaScript's memory model, as C's
   * release/acquire). One-thread replays, which never wait, skip the atomics altogether.
   */

  address(id: number): number {
    return this.words[this.entry(id) + ENTRY_ADDRESS]! >>> 0;
  }

  bytes(id: number): number {
    return this.words[this.entry(id) + ENTRY_BYTES]!;
  }

  /** Records `id`'s block (its address and requested bytes). */
  setBlock(id: number, address: number, bytes: number): void {
    const entry = this.entry(id);
    this.words[entry + ENTRY_ADDRESS] = address | 0;
    this.words[entry + ENTRY_BYTES] = bytes;
  }

  /** `ENTRY_STARTED` of `id`: a block recorded at stamp s is still the id's as long as this is s. */
  started(id: number): number {
    return Atomics.load(this.words, this.entry(id) + ENTRY_STARTED);
  }

  /** Marks `id`'s request of `ordinal` begun. */
  begin(id: number, ordinal: number): void {
    Atomics.store(this.words, this.entry(id) + ENTRY_STARTED, ordinal + 1);
  }

  /**
   * Marks `id`'s request of `ordinal` done and wakes whoever waits for it. A waiter counts
   * itself in `WAITERS_WORD` before it compares `done` in `Atomics.wait`; all of these are
   * sequentially consistent, so either it sees the new `done` or this sees it counted.
   */
  finish(id: number, ordinal: number): void {
    const at = this.entry(id) + ENTRY_DONE;
    Atomics.store(this.words, at, ordinal + 1);
    if (Atomics.load(this.words, WAITERS_WORD) > 0) Atomics.notify(this.words, at);
  }

  /**
   * Returns once the request of global index `index` is the next in the trace's order (the
   * validity pass). Waiting on `NEXT_REQUEST_WORD` itself, whose value is the one compared.
   * @throws as `awaitTurn`
   */
  awaitGlobalTurn(index: number): void {
    if (Atomics.load(this.words, NEXT_REQUEST_WORD) === index) return;
    this.waitUntil(
      () => {
        const next = Atomics.load(this.words, NEXT_REQUEST_WORD);
        return next === index ? true : next;
      },
      NEXT_REQUEST_WORD,
      this.words[STALL_LIMIT_WORD]!,
      `request ${index + 1}'s turn in the trace's order`,
    );
  }

  /** Hands the turn on after the request of global index `index`, waking the thread whose request is next. */
  passGlobalTurn(index: number): void {
    Atomics.store(this.words, NEXT_REQUEST_WORD, index + 1);
    // Every waiter wakes and re-checks: only one is next, but which one waits is not recorded.
    Atomics.notify(this.words, NEXT_REQUEST_WORD);
  }

  /** Records that `thread` has done `requests` requests (a plain store: only the stall check reads it). */
  progress(thread: number, requests: number): void {
    this.words[LINE_WORDS * (1 + thread)] = requests;
  }

  /** Raises the stop flag: every waiting thread gives up. */
  stop(): void {
    Atomics.store(this.words, STOP_WORD, 1);
    Atomics.notify(this.words, READY_WORD);
  }

  stopped(): boolean {
    return Atomics.load(this.words, STOP_WORD) !== 0;
  }

  /**
   * Returns once `id` has had `ordinal` requests done.
   * @throws ReplayStopped when another thread has failed; Error when no thread made progress
   *   for `STALL_LIMIT_MS`
   */
  awaitTurn(id: number, ordinal: number): void {
    const at = this.entry(id) + ENTRY_DONE;
    if (Atomics.load(this.words, at) >= ordinal) return;
    Atomics.add(this.words, WAITERS_WORD, 1);
    try {
      this.waitUntil(
        () => {
          const done = Atomics.load(this.words, at);
          return done >= ordinal ? true : done;
        },
        at,
        this.words[STALL_LIMIT_WORD]!,
        `the request before it on id ${id}`,
      );
    } finally {
      Atomics.sub(this.words, WAITERS_WORD, 1);
    }
  }

  /**
   * Counts this thread at the start line of a timed pass and returns when every thread is
   * there, so the pass is timed from when all of them run.
   * @throws as `awaitTurn`
   */
  startTogether(): void {
    Atomics.add(this.words, READY_WORD, 1);
    Atomics.notify(this.words, READY_WORD);
    this.waitUntil(
      () => {
        const ready = Atomics.load(this.words, READY_WORD);
        return ready >= this.threads ? true : ready;
      },
      READY_WORD,
      Math.max(START_LIMIT_MS, this.words[STALL_LIMIT_WORD]!),
      'the other threads to start',
    );
  }

  /**
   * Waits on word `at` until `ready()` says true; otherwise it returns the value seen, which
   * `Atomics.wait` compares so that a change in between is never slept through. Gives up
   * after `limitMs` in which no thread made progress.
   */
  private waitUntil(ready: () => true | number, at: number, limitMs: number, what: string): void {
    let seen = this.totalProgress();
    let quietSince = performance.now();
    for (;;) {
      const state = ready();
      if (state === true) return;
      if (this.stopped()) throw new ReplayStopped('another thread failed');
      Atomics.wait(this.words, at, state, Math.min(WAIT_SLICE_MS, limitMs));
      const now = performance.now();
      const progress = this.totalProgress();
      if (progress !== seen) {
        seen = progress;
        quietSince = now;
      } else if (now - quietSince > limitMs) {
        throw new Error(`waited ${limitMs / 1000} s for ${what} while no thread made progress`);
      }
    }
  }

  private totalProgress(): number {
    let total = 0;
    for (let thread = 0; thread < this.threads; thread++) total += this.words[LINE_WORDS * (1 + thread)]!;
    return total;
  }
}
