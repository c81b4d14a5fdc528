/**
 * The per-class slab lists: doubly linked through the slab headers (`SH_NEXT`, `SH_PREV`,
 * holding slab start addresses), with head and length in the class record (see
 * slab-layout.ts). Double links make taking a slab out of the middle of a list O(1), which
 * a free needs: the slab it frees into may be anywhere on the full or partial list.
 *
 * Invariant kept here: a list's length word counts exactly the slabs reachable from its head,
 * and every slab's `SH_PREV` names the slab whose `SH_NEXT` names it (0 for the head).
 */

import { CLASS_HEADER_OFFSET } from './size-classes.js';
import { CL_COUNT, CL_HEAD, CLASS_RECORD_WORDS, SH_NEXT, SH_PREV } from './slab-layout.js';

const NEXT = SH_NEXT >>> 2;
const PREV = SH_PREV >>> 2;
const HEAD = CL_HEAD >>> 2;
const COUNT = CL_COUNT >>> 2;

/** The slab lists of every class, over the class records at word `classesWord`. */
export class SlabLists {
  /**
   * @param u32 the heap's word view
   * @param classesWord word index of the first class record
   */
  constructor(
    private readonly u32: Uint32Array,
    private readonly classesWord: number,
  ) {}

  /** First slab on list `list` of class `cls`, 0 when the list is empty. */
  head(cls: number, list: number): number {
    return this.u32[this.classesWord + cls * CLASS_RECORD_WORDS + HEAD + list]!;
  }

  /** Slabs on list `list` of class `cls`, as its length word says. */
  count(cls: number, list: number): number {
    return this.u32[this.classesWord + cls * CLASS_RECORD_WORDS + COUNT + list]!;
  }

  /** Puts `slab` (on no list) at the head of list `list` of class `cls`. */
  push(cls: number, list: number, slab: number): void {
    const u32 = this.u32;
    const offset = CLASS_HEADER_OFFSET[cls]!;
    const headWord = this.classesWord + cls * CLASS_RECORD_WORDS + HEAD + list;
    const header = (slab + offset) >>> 2;
    const head = u32[headWord]!;
    u32[header + NEXT] = head;
    u32[header + PREV] = 0;
    if (head !== 0) u32[((head + offset) >>> 2) + PREV] = slab;
    u32[headWord] = slab;
    u32[headWord - HEAD + COUNT]!++;
  }

  /** Takes `slab` off list `list` of class `cls`, wherever it is on it. */
  remove(cls: number, list: number, slab: number): void {
    const u32 = this.u32;
    const offset = CLASS_HEADER_OFFSET[cls]!;
    const headWord = this.classesWord + cls * CLASS_RECORD_WORDS + HEAD + list;
    const header = (slab + offset) >>> 2;
    const next = u32[header + NEXT]!;
    const prev = u32[header + PREV]!;
    if (prev === 0) u32[headWord] = next;
    else u32[((prev + offset) >>> 2) + NEXT] = next;
    if (next !== 0) u32[((next + offset) >>> 2) + PREV] = prev;
    u32[headWord - HEAD + COUNT]!--;
  }

  /** Moves `slab` from list `from` to the head of list `to` of class `cls`. */
  move(cls: number, from: number, to: number, slab: number): void {
    this.remove(cls, from, slab);
    this.push(cls, to, slab);
  }
}
