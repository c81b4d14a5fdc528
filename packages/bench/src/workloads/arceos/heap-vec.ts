/**
 * A Rust `Vec` buffer in the heap under test. The ArceOS tests run with the allocator under
 * test as Rust's global allocator, so their bookkeeping vectors (the outer `Vec<Vec<usize>>`,
 * the index and address vectors) live in that heap too and grow as `Vec` grows: nothing at
 * first, then `max(2 * capacity, length + 1)` elements, at least 4 (8 for bytes, 1 for
 * elements over 1 KiB), the first buffer by an allocation and every later one by `realloc`.
 * This keeps the buffer; the test writes and reads the elements through the heap's views.
 */

import type { AddressAllocator } from '../../run/address-allocator.js';

/** The smallest capacity `Vec` gives a non-empty buffer of `elementBytes`-byte elements. */
function minimumCapacity(elementBytes: number): number {
  if (elementBytes === 1) return 8;
  return elementBytes <= 1024 ? 4 : 1;
}

/** One vector's buffer: its address (0 while it has none), capacity and length. */
export class HeapVec {
  address = 0;
  capacity = 0;
  length = 0;

  constructor(
    private readonly heap: AddressAllocator,
    readonly elementBytes: number,
  ) {}

  /**
   * As `Vec::with_capacity(capacity)`: one allocation of the whole buffer.
   * @throws Error when the heap has no room
   */
  static withCapacity(heap: AddressAllocator, elementBytes: number, capacity: number): HeapVec {
    const vec = new HeapVec(heap, elementBytes);
    vec.address = allocateOrThrow(heap, capacity * elementBytes);
    vec.capacity = capacity;
    return vec;
  }

  /**
   * Makes room for one more element, as `push` does before it writes, and returns the
   * element's address; the caller writes it, then the length counts it.
   * @throws Error when the heap has no room
   */
  pushSlot(): number {
    if (this.length === this.capacity) this.grow();
    return this.address + this.length++ * this.elementBytes;
  }

  /** Address of element `index`. */
  at(index: number): number {
    return this.address + index * this.elementBytes;
  }

  /** Bytes of the buffer: what the test asked the heap for. */
  get bytes(): number {
    return this.capacity * this.elementBytes;
  }

  /** Frees the buffer, as dropping the vector does (its elements are the caller's). */
  drop(): void {
    if (this.capacity !== 0) this.heap.free(this.address);
    this.address = 0;
    this.capacity = 0;
    this.length = 0;
  }

  private grow(): void {
    const capacity = Math.max(this.capacity * 2, this.length + 1, minimumCapacity(this.elementBytes));
    const bytes = capacity * this.elementBytes;
    const moved = this.capacity === 0 ? this.heap.malloc(bytes) : this.heap.realloc(this.address, bytes);
    if (moved === 0) throw new Error(`growing a vector to ${bytes} bytes failed: the heap has no room`);
    this.address = moved;
    this.capacity = capacity;
  }
}

/**
 * `malloc(bytes)`, failing loudly: in the original a failed allocation panics.
 * @throws Error when the heap has no room
 */
export function allocateOrThrow(heap: AddressAllocator, bytes: number): number {
  const address = heap.malloc(bytes);
  if (address === 0) throw new Error(`malloc(${bytes}) returned 0: the heap has no room`);
  return address;
}
