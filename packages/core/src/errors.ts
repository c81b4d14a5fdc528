/**
 * The one error type of heaplab. Every failure a caller can act on is an `AllocError` with a
 * `kind`; the message says what was wrong with which value, so it can be shown as it is.
 *
 * The first four kinds are ArceOS's `AllocError` variants; the rest are what a shared,
 * multi-threaded heap adds.
 */
export type AllocErrorKind =
  /** A size, alignment, address, count or option is not acceptable. */
  | 'InvalidParam'
  /** A memory range overlaps one the allocator already manages. */
  | 'MemoryOverlap'
  /** The request is valid but no free memory can satisfy it. */
  | 'NoMemory'
  /** The address is not the start of a live block (double free, interior or never allocated). */
  | 'NotAllocated'
  /** An invariant of the heap does not hold: found by `check()` or on the way. */
  | 'HeapCorrupted'
  /** A shared lock was not acquired in time, or its holder died while holding it. */
  | 'LockTimeout'
  /** A buffer is not a heaplab heap, or not of this layout version. */
  | 'InvalidHeap'
  /** No backend of that name is registered or loadable. */
  | 'UnknownBackend'
  /** Every thread slot of the heap's registry is taken. */
  | 'ThreadLimit'
  /**
   * The platform lacks what the operation needs: no `SharedArrayBuffer` (a browser page that
   * is not cross-origin isolated), or a Node-only feature such as loading a module by path.
   */
  | 'Unsupported';

/**
 * Raised by every heaplab operation that fails. A failed operation leaves the heap as it
 * was, except for `HeapCorrupted`, which reports damage that was already there.
 */
export class AllocError extends Error {
  override readonly name = 'AllocError';

  /**
   * @param kind what went wrong, for programs to branch on
   * @param message what went wrong, for people: names the offending value
   */
  constructor(
    readonly kind: AllocErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** Formats an address the way every message in heaplab shows it. */
export function hex(address: number): string {
  // A negative number (a bad address a caller passed) reads -0x8, not 0x-8.
  return address < 0 ? `-0x${(-address).toString(16)}` : `0x${address.toString(16)}`;
}

/**
 * A value as an error message shows it, whatever its type: `String` alone throws for a
 * Symbol in a template, and shows a BigInt without its `n`.
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n (a BigInt)`;
  if (typeof value === 'symbol') return `${value.toString()} (a Symbol)`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  if (typeof value === 'function') return 'a function';
  return String(value);
}
