/**
 * The live blocks one thread of a validity pass has seen handed out, in address order, to
 * find a new block that overlaps one of them by looking at its two neighbours only.
 *
 * In a replay on several threads each thread keeps its own: a block another thread frees or
 * moves stays listed here until it is in the way. An entry carries the id's `started` stamp
 * (order-table.ts) from when the block was recorded; once the id's stamp has moved on, some
 * thread has begun freeing or resizing that block, so the entry is stale and is dropped
 * instead of reported. The stamp moves before the allocator is called, so a block cannot be
 * handed out again while its stale entry still looks current. Overlaps between blocks of
 * different threads are caught by the signatures (block-signature.ts).
 */

/** An entry the new block overlaps. */
export interface Overlap {
  id: number;
  start: number;
  end: number;
}

/** Blocks by address: parallel sorted arrays (inserts and removals shift; live sets of traces are thousands, not millions). */
export class LiveBlocks {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private readonly ids: number[] = [];
  private readonly stamps: number[] = [];

  /** @param isCurrent whether an entry of `id` recorded at `stamp` is still that id's block */
  constructor(private readonly isCurrent: (id: number, stamp: number) => boolean) {}

  get size(): number {
    return this.starts.length;
  }

  /**
   * Adds `[start, end)` for `id` unless it overlaps a current entry; stale entries in the way
   * are dropped.
   * @returns the entry overlapped, or null when the block was added
   */
  add(start: number, end: number, id: number, stamp: number): Overlap | null {
    for (;;) {
      const at = this.firstAbove(start);
      const before = at - 1;
      const blocker = before >= 0 && this.ends[before]! > start ? before : at < this.starts.length && this.starts[at]! < end ? at : -1;
      if (blocker === -1) {
        this.starts.splice(at, 0, start);
        this.ends.splice(at, 0, end);
        this.ids.splice(at, 0, id);
        this.stamps.splice(at, 0, stamp);
        return null;
      }
      if (this.isCurrent(this.ids[blocker]!, this.stamps[blocker]!)) {
        return { id: this.ids[blocker]!, start: this.starts[blocker]!, end: this.ends[blocker]! };
      }
      this.removeAt(blocker);
    }
  }

  /** Removes the entry at `start`, when there is one. */
  remove(start: number): void {
    const at = this.firstAbove(start) - 1;
    if (at >= 0 && this.starts[at] === start) this.removeAt(at);
  }

  private removeAt(at: number): void {
    this.starts.splice(at, 1);
    this.ends.splice(at, 1);
    this.ids.splice(at, 1);
    this.stamps.splice(at, 1);
  }

  /** Index of the first entry starting above `address`. */
  private firstAbove(address: number): number {
    let low = 0;
    let high = this.starts.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.starts[middle]! <= address) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
