/**
 * Every shared-memory structure of the slab backend, drawn once, with a named constant for
 * each field. Offsets are in bytes; every field is a little-endian u32 word, and addresses
 * are byte offsets into the heap's buffer, stored unsigned (they may be 2^31 or more).
 *
 * Its counters are core's (`ctx.counters`): total (managed pages but the page map's), used
 * and granted (both the usable bytes of live blocks: objects at their class size, runs at
 * their pages), peak, live blocks, and metadata (the page map's pages and every slab's
 * header); requested stays 0, as objects keep no requested size, and free blocks is not kept
 * (see slab.ts). Its pools are core's pool table (`ctx.pools`). Neither is drawn here. Three
 * structures of its own live in shared memory:
 *
 * 1. The control state, at `ctx.stateOffset` in the heap's control region:
 *
 * ```text
 *  0     ST_MAGIC             'SLB2' once init has formatted the state
 *  4     ST_PAGE_MAP          address of the page map (in the arena)
 *  8     ST_PAGE_MAP_PAGES    pages the page map takes (metadata, never freed)
 *  12    ST_CLASSES           one 28-byte record per size class (CLASS_RECORD_BYTES):
 *          +0  CL_HEAD + 4 * list   head of the partial, full and empty list (0 = none)
 *          +12 CL_COUNT + 4 * list  slabs on each list
 *          +24 CL_CODED             live objects of the class with a non-zero alignment code
 *  1152  ST_PAGE_ALLOCATOR    core's BitmapPageAllocator state (room for MAX_CLASSES = 40 class
 *                             records before it, 64 aligned), sized for the largest arena
 *  STATE_BYTES
 * ```
 *
 * 2. The page map: two words per arena page, carved from the first pages of the `init` range.
 *    Page `p` is the page at `arenaStart + p * PAGE_SIZE`; its entry is at
 *    `pageMap + p * PAGE_ENTRY_BYTES`:
 *
 * ```text
 *  +0 PM_OWNER      run start | class << OWNER_CLASS_SHIFT | kind   (run start is page aligned,
 *                   so the low 12 bits are free for the tag)
 *                   class: a slab's size class; for a large run, its alignment code
 *                   (log2(align) - 3, the alignment the run was asked for, for `dealloc`)
 *  +4 PM_RUN_PAGES  on the first page of a slab or large run: the run's length in pages;
 *                   0 on every other page. Written after every owner word of the run, so a
 *                   non-zero length says the whole run is marked: it publishes the run
 *  kinds: PAGE_UNMANAGED (never given to the heap), PAGE_FREE (in the page allocator),
 *         PAGE_META (the page map itself), PAGE_SLAB, PAGE_LARGE
 * ```
 *
 *    Every page of a run carries the same owner word, so the page of any address leads to
 *    the run's start in one read: that is how `free(address)` finds its slab.
 *
 * 3. The slab: `pages` pages (per class, see size-classes.ts) holding `objects` objects of the
 *    class's size from the slab's first byte, then the header right after the last object:
 *
 * ```text
 *  slab start: object 0 | object 1 | ... | object n-1 | header | unused tail
 *  header (at slab start + n * objectSize, 8 aligned):
 *  +0  SH_TAG     (slab start + class) ^ cookie ^ SLAB_TAG_SALT while the page map holds the
 *                 slab: written after the run's owner words and before its length publishes
 *                 it; retired (complemented) before its pages go back. So a page-aligned
 *                 link whose header carries the tag of that start and class names a slab of
 *                 that class. First, so an overflow of the last object hits it first
 *  +4  SH_FREE    free objects; 0 < SH_FREE < n on the partial list (n briefly, for a slab just
 *                 put there to serve the allocation or refill run under way), 0 on the full
 *                 list, n on the empty list
 *  +8  SH_HINT    lowest bitmap word that may hold a free bit; < ceil(n / 32)
 *  +12 SH_NEXT    next slab on the class list this slab is on (slab start, 0 = last)
 *  +16 SH_PREV    previous slab on that list (0 = first)
 *  +20 SH_BITMAP  ceil(n / 32) words: bit i (word i >> 5, mask 1 << (i & 31)) set = object i
 *                 is free; bits at and beyond n are always clear
 *  +20 + 4 * ceil(n / 32)  the alignment codes: CLASS_ALIGN_BITS bits per object (0, 1, 2
 *                 or 4 by class, CLASS_ALIGN_WORDS words), object i's code at word
 *                 i >> (5 - log2 bits), bits (i & (32 / bits - 1)) * bits: log2(align) - 3
 *                 for an object allocated with an alignment above 8, 0 otherwise, and 0 for
 *                 every free object. A class whose objects are only 8-aligned has no codes
 * ```
 *
 *    Objects start at the slab's first byte, so an object of size `s` is aligned to the
 *    lowest set bit of `s` (up to the page size): power-of-two classes give any alignment up
 *    to their size without padding.
 *
 * ## What `dealloc` is told about a block (`blockLayout`)
 *
 * An object keeps no requested size (no header), so `dealloc` accepts the sizes that its
 * allocation could have asked for: with no alignment code, exactly the sizes whose class is
 * the object's class; with code `k`, those that `alignedClassOf(size, 2^(k+3))` maps to it.
 * The alignment is exact: the code records it. It costs at most 4 bits per object, and only
 * classes whose objects can be more than 8-aligned have codes: without them an object of
 * the 1024 class could not tell `malloc(1000)` (so size 0 is refused) from
 * `alignedAlloc(1024, 0)` (which must be accepted). A large run records the alignment in its
 * owner word and accepts the sizes that need exactly its page count.
 *
 * ## What a dead thread leaves, and how `recover` rebuilds
 *
 * A thread may die before any store of any operation. Three records are trusted, because
 * every store sequence keeps them right at every instant; everything else is rebuilt.
 *
 * - The page map says what every page is. A run exists once its first page carries its
 *   length, which is written after every owner word of the run: a new slab or large run that
 *   died earlier is a first page with length 0 and pages that name it, and becomes free
 *   pages again. Taking a run apart writes its first page first (to FREE), so the pages
 *   after it then name a start that no longer starts a run ("orphans"): free. A run shrunk in
 *   place writes its new length first, then frees its tail (orphans again); one grown in
 *   place marks the new pages first, then writes the longer length. Inside a published run
 *   every page carries the run's owner word; anything else there is damage, not a death.
 * - A slab's bitmap says which objects are live. The header of a new slab (count, bitmap,
 *   codes) is written while its pages are still free in the page map, then the owner words,
 *   then the tag, then the length that publishes the run; after that, an allocation clears one bit and a free sets one, each in one
 *   store, so an object is live or free at every instant. An allocation that died after its
 *   bit was cleared leaves a live object nobody holds: it stays live (leaked with the thread).
 *   A refill run is allocations one after another (caches.ts): a death leaves the objects
 *   it made live and the rest of the run free.
 *   The free count, the hint, the links and alignment codes of free objects are recomputed
 *   from the bitmap (and the class's count of coded objects from the codes): when count and
 *   bitmap disagree, the bitmap is right.
 * - A tag says a header is live (see SH_TAG). A slab being given back has its tag retired
 *   first, then its run freed: a published slab with a retired tag and no live object was
 *   being given back, and recovery finishes that. A slab that dies unpublished leaves its
 *   owner words (its tag is written after them), so recovery finds its header and retires
 *   its tag when it frees the pages.
 * - Core's pool table lists every range whose addMemory returned (core records a range after
 *   the backend's addMemory, under the heap lock, before any block of it can be handed out).
 *   Managed pages that no listed pool covers are an addMemory a thread died in: they are
 *   all free, and recovery makes them unmanaged again (core never recorded the range).
 *
 * From those, `recover` rebuilds the three lists of every class (slabs in address order,
 * each on the list its recounted free count names; empty slabs beyond `emptySlabs` go back
 * to the pages), the counts of coded objects, core's counters, and the page
 * allocator's bitmaps, formatted again through its own `init`, `addMemory` and
 * `allocPagesAt` from the managed and allocated runs of the page map (a death between its
 * own stores leaves its counters and bitmaps apart). Nothing is lost: every page and object
 * ends up free or live.
 *
 * ## Corruption
 *
 * Every link is checked before it is followed or an object handed out: a slab named by a
 * list head, a list link or a page's owner word must be page aligned and its header must
 * carry the tag of that start and class, which only the header of a slab of that class that
 * the page map holds carries (see SH_TAG); a head must have a free count within its objects,
 * a freed-into slab fewer free objects than objects; an unlink checks both neighbours' links
 * back. The tag is read from the header whose links and counts the operation reads next, so
 * a check costs a compare, not one more cache line as the page map's entry would. Bitmap
 * scans stop at the class's bitmap words, a found object must be below the object count,
 * and a run's length must fit the arena and end on a page of the run. So a damaged
 * structure raises `HeapCorrupted`, and no store goes through a damaged link. With
 * `ctx.checked`, every operation also verifies the whole slab (against the page map too) or
 * run it touches.
 */

import { MAX_HEAP_BYTES } from '@heaplab/core';
import { type AllocError, alignUp, BitmapPageAllocator, heapCorrupted, MAX_ALIGN, notAllocated, PAGE_SIZE } from '@heaplab/core/backend';

// --- control state -------------------------------------------------------------------------

/**
 * 'SLB2' as a little-endian word. ('SLB1' kept its own pool count, counters and addMemory
 * record in the state, and a live count per class: a heap of that layout is refused.)
 */
export const SLAB_MAGIC = 0x32424c53;

export const ST_MAGIC = 0;
export const ST_PAGE_MAP = 4;
export const ST_PAGE_MAP_PAGES = 8;
export const ST_CLASSES = 12;

/** Bytes of one size class's record. */
export const CLASS_RECORD_BYTES = 28;
/** Byte offset in a class record of the list heads, one word per `SlabList`. */
export const CL_HEAD = 0;
/** Byte offset in a class record of the list lengths, one word per `SlabList`. */
export const CL_COUNT = 12;
/**
 * Live objects of the class whose alignment code is not 0: a free clears a code only while
 * this is not 0. Recounted by recovery from the codes of live objects.
 */
export const CL_CODED = 24;
/** Words in one class record. */
export const CLASS_RECORD_WORDS = CLASS_RECORD_BYTES >>> 2;

/** The lists a slab can be on; each slab is on exactly the one its fill state names. */
export const SlabList = {
  /** Some objects free, some live: allocations come from its head. */
  partial: 0,
  /** No object free. */
  full: 1,
  /** Every object free: kept for reuse, at most `emptySlabs` per class. */
  empty: 2,
} as const;
export const SLAB_LIST_NAMES = ['partial', 'full', 'empty'] as const;

/** Room for the class records of up to 40 classes; size-classes.ts checks that it has no more. */
export const MAX_CLASSES = 40;
/** Byte offset of the page allocator's state: after the class records, 64 aligned (1152). */
export const ST_PAGE_ALLOCATOR = alignUp(ST_CLASSES + MAX_CLASSES * CLASS_RECORD_BYTES, 64);

/** Pages of the largest arena a heap can have: the page allocator's state is sized for it. */
export const MAX_WINDOW_PAGES = MAX_HEAP_BYTES / PAGE_SIZE;

/** Bytes of control state the slab backend asks for. */
export const STATE_BYTES = ST_PAGE_ALLOCATOR + BitmapPageAllocator.stateBytes(MAX_WINDOW_PAGES);

// --- page map ------------------------------------------------------------------------------

export const PAGE_ENTRY_BYTES = 8;
/** Words per page-map entry: a page's entry starts at word `mapWord + page * PAGE_ENTRY_WORDS`. */
export const PAGE_ENTRY_WORDS = PAGE_ENTRY_BYTES >>> 2;
/** Every page of a run carries the same owner word; free and unmanaged pages only their kind. */
export const PM_OWNER = 0;
/**
 * The run's length on its first page, written after every owner word of the run (it
 * publishes the run); 0 on every other page, free ones included.
 */
export const PM_RUN_PAGES = 4;

/** log2 of the page size: `(address - arenaStart) >>> PAGE_SHIFT` is the address's page. */
export const PAGE_SHIFT = 12;
/** The owner word's tag bits (kind and class); the rest is the run's start address. */
export const OWNER_TAG_MASK = PAGE_SIZE - 1;
/** The owner word's kind bits. */
export const OWNER_KIND_MASK = 0xf;
/**
 * Where the size class sits in a slab page's owner word, and the alignment code (see
 * `alignCode`) in a large run's: the alignment the run was allocated with.
 */
export const OWNER_CLASS_SHIFT = 4;
export const OWNER_CLASS_MASK = 0xff;

/** The run start an owner word names. */
export function ownerStart(owner: number): number {
  return owner - (owner & OWNER_TAG_MASK);
}

/** The size class a slab page's owner word names. */
export function ownerClass(owner: number): number {
  return (owner >>> OWNER_CLASS_SHIFT) & OWNER_CLASS_MASK;
}

/** A page no range given to the heap covers. */
export const PAGE_UNMANAGED = 0;
/** A managed page that the page allocator holds free. */
export const PAGE_FREE = 1;
/** A page of the page map itself. */
export const PAGE_META = 2;
/** A page of a slab; the owner word carries the slab's class. */
export const PAGE_SLAB = 3;
/** A page of a large run: one block served whole by the page layer. */
export const PAGE_LARGE = 4;
export const PAGE_KIND_NAMES = ['unmanaged', 'free', 'metadata', 'slab', 'large run'] as const;

// --- slab header ---------------------------------------------------------------------------

/** Mixed into a slab's tag with its address, its class and the heap cookie. */
export const SLAB_TAG_SALT = 0x51ab51ab;
/**
 * The slab's tag (`slabTag`) exactly while the page map holds the slab, but for the stores
 * that make or give back one: written after the owner words and before the length that
 * publishes the run, retired (`retiredTag`) before the run is freed; recovery retires the tag
 * of a dead slab whose pages it frees. So a stale link to given-back pages fails.
 */
export const SH_TAG = 0;
export const SH_FREE = 4;
export const SH_HINT = 8;
export const SH_NEXT = 12;
export const SH_PREV = 16;
export const SH_BITMAP = 20;
/**
 * The tag a slab's header carries: its address and class (in the address's low bits, which
 * are zero as slabs are page aligned) mixed with the heap cookie.
 */
export function slabTag(slab: number, cls: number, cookie: number): number {
  return ((slab + cls) ^ cookie ^ SLAB_TAG_SALT) >>> 0;
}

/**
 * What a slab's tag becomes once the slab is being given back: its complement, which no
 * slab's tag at that header position can equal, so a stale link fails, and recovery can
 * tell a give-back that died half done (see "What a dead thread leaves").
 */
export function retiredTag(slab: number, cls: number, cookie: number): number {
  return ~slabTag(slab, cls, cookie) >>> 0;
}

/** The owner word of every page of a slab of class `cls` starting at `slab`. */
export function slabOwner(slab: number, cls: number): number {
  return slab + ((cls << OWNER_CLASS_SHIFT) | PAGE_SLAB);
}

/** Bytes of the header before its bitmap. */
export const SLAB_HEADER_FIXED_BYTES = SH_BITMAP;

/** The alignment code of an alignment (a power of two from 8): log2(align) - 3; 0 for 8. */
export function alignCode(align: number): number {
  return 28 - Math.clz32(align);
}

/** The alignment an alignment code stands for. */
export function codeAlign(code: number): number {
  return 2 ** (code + 3);
}

/** The largest alignment code a large run's owner word may carry: that of `MAX_ALIGN`. */
export const MAX_ALIGN_CODE = alignCode(MAX_ALIGN);

// --- errors --------------------------------------------------------------------------------

/** A broken structure of the slab heap: `what` names the place and the broken invariant. */
export function corrupt(what: string): AllocError {
  return heapCorrupted('slab heap', what);
}

/** `address` is not the start of a live block of the slab heap. */
export function notLive(address: number): AllocError {
  return notAllocated('slab', address, 'not the start of a live block (double free, interior pointer, or never allocated)');
}
