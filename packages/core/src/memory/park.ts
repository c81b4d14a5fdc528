/**
 * Parking a thread on a word of shared memory until it changes or a timeout passes. Every
 * wait in heaplab is a loop that parks for a bounded slice and then looks again (at the
 * word, a poison flag, its deadline), so a slice may end early without harm.
 *
 * `Atomics.wait` is the way to park, but a browser page's main thread may not block: there
 * it throws. Such a thread spins instead, watching the word for at most `MAX_SPIN_MS` per
 * call. Whether this thread may block is asked once, when this module loads, not per call.
 */

/** What a park ended with, as `Atomics.wait` says it. */
export type ParkResult = 'ok' | 'not-equal' | 'timed-out';

/**
 * Longest spin of one `park` on a thread that may not block. The caller's loop bounds the
 * whole wait with its deadline and looks at its poison flags between slices; a short slice
 * lets it look often, and costs nothing more than the spin itself would.
 */
export const MAX_SPIN_MS = 5;

/**
 * Whether `Atomics.wait` may block this thread: a zero-length wait on a word of its own
 * returns at once where blocking is allowed and throws where it is not (a page's main
 * thread). Without `SharedArrayBuffer` no heap can exist here, and nothing parks.
 */
function probeBlocking(): boolean {
  if (typeof SharedArrayBuffer !== 'function') return false;
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether this thread parks with `Atomics.wait` (true) or by spinning (false); asked once. */
export const THREAD_CAN_BLOCK: boolean = probeBlocking();

/**
 * Waits while `i32[index]` holds `value`, for at most `timeoutMs` (blocking) or
 * `min(timeoutMs, MAX_SPIN_MS)` (spinning, where this thread may not block).
 * @returns `'not-equal'` when the word did not hold `value` to begin with; `'ok'` when woken
 *   (blocking: by `Atomics.notify`; spinning: by seeing the word change); `'timed-out'`
 */
export function park(i32: Int32Array, index: number, value: number, timeoutMs: number): ParkResult {
  return THREAD_CAN_BLOCK ? Atomics.wait(i32, index, value, timeoutMs) : parkBySpinning(i32, index, value, timeoutMs);
}

/**
 * `park` for a thread that may not block: watches the word for at most
 * `min(timeoutMs, MAX_SPIN_MS)`. A notify that leaves the word as it was goes unseen, and
 * the spin runs to its end, as a blocking wait whose notify came just before it would.
 */
export function parkBySpinning(i32: Int32Array, index: number, value: number, timeoutMs: number): ParkResult {
  if (Atomics.load(i32, index) !== value) return 'not-equal';
  const deadline = performance.now() + Math.min(timeoutMs, MAX_SPIN_MS);
  while (performance.now() < deadline) {
    if (Atomics.load(i32, index) !== value) return 'ok';
  }
  return 'timed-out';
}
