/**
 * The per-class slab lists: doubly linked through the slab headers (`SH_NEXT`, `SH_PREV`,
 * holding slab start addresses), with head and length in the class record (see
 * layout.ts). Double links make taking a slab out of the middle of a list O(1), which
 * a free needs: the slab it frees into may be anywhere on the full or partial list.
 *
 * Invariants kept here: a list's length word counts exactly the slabs reachable from its
 * head, and every slab's `SH_PREV` names the slab whose `SH_NEXT` names it (0 for the head).
 * Every link is checked before a store goes through it: the slab it names must be page
 * aligned and carry the tag of that start and of the list's class, which only the header of
 * a slab the page map holds carries (layout.ts), and must link back (safe unlinking, as
 * glibc does). So a header damaged by an overflow or a write after free raises
 * `HeapCorrupted` instead of turning a store into one at an address the damage chose. The
 * tag shares its cache line with the links being read and written, where the page map's
 * entry would be one more line per link.
 */

import { type AllocError, hex } from '@heaplab/core/backend';

import { CLASS_HEADER_OFFSET, CLASS_SIZE } from './size-classes.js';
import { CL_COUNT, CL_HEAD, CLASS_RECORD_WORDS, corrupt, OWNER_TAG_MASK, SH_NEXT, SH_PREV, SH_TAG, SLAB_LIST_NAMES, slabTag } from './layout.js';

const TAG = SH_TAG >>> 2;
const NEXT = SH_NEXT >>> 2;
const PREV = SH_PREV >>> 2;
const HEAD = CL_HEAD >>> 2;
const COUNT = CL_COUNT >>> 2;

/** The slab lists of every class, over the class records at word `classesWord`. */
export class SlabLists {
  /**
   * @param u32 the heap's word view
   * @param classesWord word index of the first class record
   * @param cookie the heap cookie, mixed into slab tags
   */
  constructor(
    private readonly u32: Uint32Array,
    private readonly classesWord: number,
    private readonly cookie: number,
  ) {}

  /** First slab on list `list` of class `cls`, 0 when the list is empty. */
  head(cls: number, list: number): number {
    return this.u32[this.classesWord + cls * CLASS_RECORD_WORDS + HEAD + list]!;
  }

  /** Slabs on list `list` of class `cls`, as its length word says. */
  count(cls: number, list: number): number {
    return this.u32[this.classesWord + cls * CLASS_RECORD_WORDS + COUNT + list]!;
  }

  /**
   * True when `slab` is a page-aligned start whose header carries the tag of that start and
   * class `cls`: the header of a slab of that class that the page map holds. A link from a
   * damaged header, a stale link to a slab given back, or one to a slab of another class
   * fails it. One load, from the header the caller reads next anyway.
   */
  isSlab(slab: number, cls: number): boolean {
    return (slab & OWNER_TAG_MASK) === 0 && this.u32[((slab + CLASS_HEADER_OFFSET[cls]!) >>> 2) + TAG] === slabTag(slab, cls, this.cookie);
  }

  /**
   * Puts `slab` (on no list) at the head of list `list` of class `cls`.
   * @throws AllocError `HeapCorrupted` when the list's head is not a first slab of that class
   */
  push(cls: number, list: number, slab: number): void {
    const u32 = this.u32;
    const offset = CLASS_HEADER_OFFSET[cls]!;
    const headWord = this.classesWord + cls * CLASS_RECORD_WORDS + HEAD + list;
    const header = (slab + offset) >>> 2;
    const head = u32[headWord]!;
    if (head !== 0 && (!this.isSlab(head, cls) || u32[((head + offset) >>> 2) + PREV] !== 0)) {
      throw this.broken(cls, list, head, 'its head');
    }
    u32[header + NEXT] = head;
    u32[header + PREV] = 0;
    if (head !== 0) u32[((head + offset) >>> 2) + PREV] = slab;
    u32[headWord] = slab;
    u32[headWord - HEAD + COUNT]!++;
  }

  /**
   * Takes `slab` off list `list` of class `cls`, wherever it is on it. Both neighbours are
   * checked (slabs of the class that link back to `slab`, or the list head when there is no
   * previous one) before either is written.
   * @throws AllocError `HeapCorrupted` when a link of `slab` or of a neighbour is broken
   */
  remove(cls: number, list: number, slab: number): void {
    const u32 = this.u32;
    const offset = CLASS_HEADER_OFFSET[cls]!;
    const headWord = this.classesWord + cls * CLASS_RECORD_WORDS + HEAD + list;
    const header = (slab + offset) >>> 2;
    const next = u32[header + NEXT]!;
    const prev = u32[header + PREV]!;
    if (next !== 0 && (!this.isSlab(next, cls) || u32[((next + offset) >>> 2) + PREV] !== slab)) {
      throw this.broken(cls, list, slab, 'its next link');
    }
    if (prev === 0 ? u32[headWord] !== slab : !this.isSlab(prev, cls) || u32[((prev + offset) >>> 2) + NEXT] !== slab) {
      throw this.broken(cls, list, slab, 'its previous link');
    }
    if (prev === 0) u32[headWord] = next;
    else u32[((prev + offset) >>> 2) + NEXT] = next;
    if (next !== 0) u32[((next + offset) >>> 2) + PREV] = prev;
    u32[headWord - HEAD + COUNT]!--;
  }

  /** Moves `slab` from list `from` to the head of list `to` of class `cls`. @throws as `remove` and `push` */
  move(cls: number, from: number, to: number, slab: number): void {
    this.remove(cls, from, slab);
    this.push(cls, to, slab);
  }

  /** The error for a link that names no slab of the class, or one that does not link back. */
  private broken(cls: number, list: number, slab: number, what: string): AllocError {
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    return corrupt(
      `on the ${SLAB_LIST_NAMES[list]} list of class ${CLASS_SIZE[cls]}, ${what} at slab ${hex(slab)} ` +
        `(next ${hex(this.u32[header + NEXT] ?? 0)}, previous ${hex(this.u32[header + PREV] ?? 0)}) ` +
        'names no slab of that class linking back (an overflow or a write after free?)',
    );
  }
}
