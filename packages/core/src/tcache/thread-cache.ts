/**
 * A thread cache in front of a locked backend: glibc's tcache idea over a shared heap. Each
 * thread keeps bins of small blocks it allocated and freed, in its record in the control
 * region (layout `TC_*` and `OWNER_*` in heap-layout.ts, drawn there), so most mallocs and
 * frees take no lock at all:
 *
 * ```text
 *  malloc(size <= 1024, align <= 8)        free(address)
 *    class c = ceil(size / 8)                owner entry of address says "mine, class c"
 *    bin c empty? -> refill                    and the block has no cache mark?
 *    pop bin c, clear the block's mark           -> push on bin c, mark it
 *                                                 (bin full -> flush half of it first)
 *                                            anything else -> the locked, validated way:
 *  refill: one lock hold, 512 bytes of         cache mark -> double free refused
 *    blocks of 8c bytes from the backend,      another thread's entry -> remote free:
 *    entry "mine, class c" for each              clear the entry, backend.release
 *  flush:  one lock hold, half the bin         no entry -> backend.release (it validates)
 *    back with backend.release, entries cleared
 * ```
 *
 * What makes a lock-free free sound without reading the backend's metadata (which only the
 * heap lock protects) is the owner table: a refill writes each block's whole address, its
 * class and its owner into the block's entry, and only a free whose address finds exactly
 * that entry, naming this thread, of a block without the cache's mark, is taken into the
 * cache. A free of anything else goes to the backend under the lock, where the backend
 * validates it as it always did: interior pointers, foreign addresses and double frees of
 * backend blocks are refused exactly as without a cache. A double free of a block that sits
 * in a cache is refused here: the block carries the cache's mark in its second word (this
 * thread confirms it on its own bins, so live data that only matches the mark is freed).
 * Cached mallocs and frees never write the owner table, only the block and this thread's
 * record: two threads whose blocks' entries share table lines (neighbouring blocks, or
 * addresses 512 KiB apart, which map to the same entry) do not make those lines bounce.
 *
 * Blocks freed by another thread are never cached by it: they go straight to the backend
 * (counted as remote frees), so no thread holds blocks it did not hand out.
 *
 * A thread may die at any instruction. Every step below is ordered so that a reaper who
 * flushes the dead thread's record (`reap`) finds only blocks that are live in the backend:
 * a push writes the link and mark, then the head (the commit), then the counts; a pop moves
 * the head first. At worst one block in flight (popped but not yet handed out or released)
 * is lost, as a block the thread held when it died would be. A death inside a refill or a
 * flush holds the heap lock, which recovery repairs first (recovery.ts); the cache's own
 * words need no repair, since the reaper follows the links, bounded, and recounts.
 *
 * The cache keeps no requested sizes: a block refilled for class c is asked of the backend
 * as 8c bytes and serves any request of 8c - 7 to 8c bytes, so with the cache on
 * `requestedBytes` is null and `dealloc` accepts any size of the block's class
 * (`CachedBackend`). Turn it off (`tcache=false`) to study exact requests.
 */

import { AllocError, hex } from '../errors.js';
import {
  OWNER_ENTRY_CLASS_MASK,
  OWNER_ENTRY_CLASS_SHIFT,
  OWNER_ENTRY_OWNER_MASK,
  OWNER_ENTRY_OWNER_SHIFT,
  OWNER_ENTRY_TAG_SHIFT,
  OWNER_INDEX_MASK,
  OWNER_TABLE,
  OWNER_TAG_SHIFT,
  TC_BIN_LIMIT,
  TC_BIN_REFILLS,
  TC_BLOCK_MARK,
  TC_BLOCK_NEXT,
  TC_BYTE_LIMIT,
  TC_BYTES,
  TC_CLASS_BYTES,
  TC_CLASSES,
  TC_COUNTS,
  TC_FLUSHES,
  TC_HEADS,
  TC_RECORD_BYTES,
  TC_MAX_BATCH,
  TC_MIN_BIN_BLOCKS,
  TC_REFILL_BYTES,
  TC_OWNER_EVICTIONS,
  TC_REFILLS,
  TC_REMOTE_FREES,
  SlotState,
  THREAD_CACHES,
} from '../memory/heap-layout.js';
import type { ThreadRegistry } from '../memory/thread-registry.js';
import type { HeapMemory } from '../interfaces.js';
import type { Backend } from '../backend/contract.js';
import { freeMarker } from '../backend/free-marker.js';
import type { SharedMutex } from '../memory/mutex.js';
import type { Arena, Arenas } from '../facade/arenas.js';
import { MIN_ALIGN } from '../sizes.js';

/** The steps of a push, a pop, a refill and a flush, for tests that stop a thread between them. */
export type ThreadCacheStep = 'linked' | 'pushed' | 'popped' | 'refilled-one' | 'flush-popped' | 'remote-cleared';

/** What all threads' caches hold and did, summed over their records (a racy snapshot). */
export interface ThreadCacheFigures {
  /** Blocks held in caches right now: live to the backend, free to the program. */
  blocks: number;
  /** Their bytes, counted as 8 bytes per class step (at most their usable bytes). */
  bytes: number;
  /** Lock holds that refilled a bin, and that flushed blocks back. */
  refills: number;
  flushes: number;
  /** Frees of blocks another thread handed out, which went straight to the backend. */
  remoteFrees: number;
  /**
   * Owner-table entries a refill overwrote while they named another block (an address a
   * multiple of 512 KiB away): that block's next free takes the locked way, which the backend
   * validates, instead of its owner's bin.
   */
  ownerEvictions: number;
}

/** Byte offset of thread `threadId`'s cache record. */
export function cacheRecordOffset(threadId: number): number {
  return THREAD_CACHES + (threadId - 1) * TC_RECORD_BYTES;
}

/** Blocks one refill of class `cls` takes: `TC_REFILL_BYTES` of them, 1 to `TC_MAX_BATCH`. */
export function refillBatchOf(cls: number): number {
  return Math.min(TC_MAX_BATCH, Math.max(1, (TC_REFILL_BYTES / (cls * TC_CLASS_BYTES)) | 0));
}

/** The most blocks bin `cls` holds: room for `TC_BIN_REFILLS` refills, at least `TC_MIN_BIN_BLOCKS`, at most `TC_BIN_LIMIT`. */
export function binLimitOf(cls: number): number {
  return Math.max(TC_MIN_BIN_BLOCKS, Math.min(TC_BIN_LIMIT, TC_BIN_REFILLS * refillBatchOf(cls)));
}

/** Each class's `binLimitOf`, looked up by the free fast path (index 0 unused: 0, so full). */
const BIN_LIMITS = Uint8Array.from({ length: TC_CLASSES + 1 }, (_, cls) => (cls === 0 ? 0 : binLimitOf(cls)));

/** The cache class of a request of `size` bytes (`size <= TC_MAX_REQUEST`). */
export function cacheClassOf(size: number): number {
  return size <= TC_CLASS_BYTES ? 1 : (size + TC_CLASS_BYTES - 1) >>> 3;
}

/**
 * The mark a cached block carries in its second word: the heap's free marker
 * (backend/free-marker.ts), as an unsigned word. A program's data matches it by chance once in
 * 2^30 frees, and a `memset` fill never (a remote free trusts it: it cannot walk the owner's
 * bins); it is no secret from the program (the cookie is in the superblock), only a tag that a
 * write after free, or data that happens to look like a link, does not carry. Computed on
 * every push and pop, so two operations, not a hash.
 */
export function cacheMark(address: number, cookie: number): number {
  return freeMarker(address, cookie) >>> 0;
}

/** The owner-table word (u32 index) of `address`. */
export function ownerSlot(address: number): number {
  return (OWNER_TABLE >>> 2) + ((address >>> 3) & OWNER_INDEX_MASK);
}

/** The tag bits an entry for `address` carries. */
function ownerTag(address: number): number {
  return (address >>> OWNER_TAG_SHIFT) << OWNER_ENTRY_TAG_SHIFT;
}

/** Whether owner-table entry `entry` is one written for `address` (and not another's, or empty). */
function namesAddress(entry: number, address: number): boolean {
  return entry !== 0 && entry >>> OWNER_ENTRY_TAG_SHIFT === address >>> OWNER_TAG_SHIFT;
}

/**
 * Clears the owner-table entry of `address` when it names it: what the cache does before a
 * block reaches the backend by any way but its own bins (a remote free, a resize), so that a
 * later free of it is validated by the backend. Exported for tests that drive a backend
 * directly, as a thread inside such a call would have done.
 */
export function forgetCacheOwner(u32: Uint32Array, address: number): void {
  const slot = ownerSlot(address);
  if (namesAddress(u32[slot]!, address)) u32[slot] = 0;
}

/** `cacheHolding`'s answer for a block that carries the cache mark but whose entry is gone. */
const MARKED = -1;

/** All entry bits but the class: the tag and the owner. */
const ENTRY_NOT_CLASS = ~(OWNER_ENTRY_CLASS_MASK << OWNER_ENTRY_CLASS_SHIFT);
/** The owner bits of an entry. */
const ENTRY_OWNER = OWNER_ENTRY_OWNER_MASK << OWNER_ENTRY_OWNER_SHIFT;

/** One thread's cache over a locked backend. Made once per attached thread. */
export class ThreadCache {
  /** Test hook: called between the steps of a push, a pop, a refill and a flush. */
  stepHook: ((step: ThreadCacheStep) => void) | null = null;

  private readonly u32: Uint32Array;
  private readonly u8: Uint8Array;
  /** Word index of this thread's head of class 0 (so `+ c` is class c's head). */
  private readonly headsWord: number;
  /** Byte index of this thread's count of class 0 (so `+ c` is class c's count). */
  private readonly countsByte: number;
  private readonly bytesWord: number;
  /** The owner bits of this thread's entries. */
  private readonly ownerBits: number;
  private readonly arenaBytes: number;
  /** The class of the refill run being carved, and its first block (0 until it is taken). */
  private runClass = 0;
  private runFirst = 0;
  /**
   * `allocateRun`'s `take`, made once: the first block is the caller's, the others go on the
   * bin as they come (a closure per refill would be garbage on every refill).
   */
  private readonly takeRunBlock = (block: number): void => {
    if (this.runFirst === 0) {
      this.runFirst = block;
      return;
    }
    this.stepHook?.('refilled-one');
    this.push(block, this.runClass);
  };

  /** The home arena's instance, called only holding `mutex`, its heap lock: every block of the bins comes from it. */
  private readonly backend: Backend;
  private readonly mutex: SharedMutex;

  /** @param arenas the locked backend's arenas; this thread's bins take blocks of its home arena only */
  constructor(
    memory: HeapMemory,
    readonly threadId: number,
    private readonly cookie: number,
    private readonly arenaStart: number,
    arenaEnd: number,
    private readonly arenas: Arenas,
  ) {
    this.backend = arenas.home.inner;
    this.mutex = arenas.home.mutex;
    this.u32 = memory.u32;
    this.u8 = memory.u8;
    const record = cacheRecordOffset(threadId);
    this.headsWord = ((record + TC_HEADS) >>> 2) - 1;
    this.countsByte = record + TC_COUNTS - 1;
    this.bytesWord = (record + TC_BYTES) >>> 2;
    this.ownerBits = (threadId - 1) << OWNER_ENTRY_OWNER_SHIFT;
    this.arenaBytes = arenaEnd - arenaStart;
  }

  // --- the fast paths ------------------------------------------------------------------

  /**
   * A block of at least `size` bytes (`size <= TC_MAX_REQUEST`, 8-byte alignment) from this
   * thread's bin, or from a refill; 0 when the backend has no room.
   * @throws AllocError `HeapCorrupted` when the bin's head or link is not a cached block
   */
  allocate(size: number): number {
    const cls = cacheClassOf(size);
    const u32 = this.u32;
    const headIndex = this.headsWord + cls;
    const block = u32[headIndex]!;
    if (block === 0) return this.refill(cls);
    const at = block >>> 2;
    const next = u32[at + (TC_BLOCK_NEXT >>> 2)]!;
    // The head was checked as a link when it became the head (or pushed by this thread): its
    // mark says it is still a cached block, and the link it gives must be a block address.
    if (u32[at + (TC_BLOCK_MARK >>> 2)] !== cacheMark(block, this.cookie) || (next !== 0 && !this.isBlockAddress(next))) {
      throw this.corrupted(this.threadId, cls, block, 'its mark or its link was overwritten (a write after free?)');
    }
    u32[headIndex] = next;
    this.stepHook?.('popped');
    this.u8[this.countsByte + cls]!--;
    u32[this.bytesWord]! -= cls << 3;
    u32[at + (TC_BLOCK_MARK >>> 2)] = 0;
    return block;
  }

  /**
   * Frees `address` (in the arena, 8-aligned: the facade checked): into this thread's bin when
   * its owner entry says this thread handed it out and the block does not carry the cache's
   * mark, else the locked way. The owner table is only read here: the mark, in the block's
   * own line, says whether the block is cached, so two threads write no shared table line.
   * @throws AllocError `NotAllocated` for a double free or anything the backend refuses
   */
  release(address: number): void {
    const u32 = this.u32;
    const slot = ownerSlot(address);
    const entry = u32[slot]!;
    const at = address >>> 2;
    const mark = cacheMark(address, this.cookie);
    if ((entry & ENTRY_NOT_CLASS) === (ownerTag(address) | this.ownerBits) && u32[at + (TC_BLOCK_MARK >>> 2)] !== mark) {
      const cls = (entry >>> OWNER_ENTRY_CLASS_SHIFT) & OWNER_ENTRY_CLASS_MASK;
      const countIndex = this.countsByte + cls;
      const count = this.u8[countIndex]!;
      if (count < BIN_LIMITS[cls]! && u32[this.bytesWord]! + (cls << 3) <= TC_BYTE_LIMIT) {
        const headIndex = this.headsWord + cls;
        u32[at + (TC_BLOCK_MARK >>> 2)] = mark;
        u32[at + (TC_BLOCK_NEXT >>> 2)] = u32[headIndex]!;
        this.stepHook?.('linked');
        u32[headIndex] = address;
        this.stepHook?.('pushed');
        this.u8[countIndex] = count + 1;
        u32[this.bytesWord]! += cls << 3;
        return;
      }
      this.releaseBeyondBin(address, cls);
      return;
    }
    this.releaseLocked(address, slot, entry);
  }

  // --- the slow paths ------------------------------------------------------------------

  /**
   * Bin `cls` was empty: one lock hold takes `refillBatchOf(cls)` blocks of its size (fewer
   * when the byte bound leaves less room), as one run of the backend's when it carves runs
   * (`Backend.allocateRun`: contiguous, on lines of their own; docs/thread-cache.md, "Refill
   * runs"), else one `allocate` at a time. A batch of one block is never a run: lined up
   * alone, a block of 264 to 512 bytes left up to 56 bytes of its last line free behind it
   * (a tenth of a 512-byte block), to keep only its first and last line from a neighbour.
   * The first block is the caller's; the rest go on the bin as they are made, so a thread
   * that dies partway loses at most the block in hand.
   */
  private refill(cls: number): number {
    const bytes = cls << 3;
    const backend = this.backend;
    let first = 0;
    this.mutex.lock();
    try {
      // The bin was empty and a batch is at most a quarter of its bound: only the byte bound can stop it.
      const room = 1 + Math.max(0, ((TC_BYTE_LIMIT - this.u32[this.bytesWord]!) / bytes) | 0);
      const batch = Math.min(refillBatchOf(cls), room);
      if (backend.allocateRun !== undefined && batch > 1) {
        this.runClass = cls;
        this.runFirst = 0;
        backend.allocateRun(bytes, batch, this.takeRunBlock);
        first = this.runFirst;
      }
      if (first === 0) {
        first = backend.allocate(bytes, MIN_ALIGN);
        for (let taken = 1; first !== 0 && taken < batch; taken++) {
          const block = backend.allocate(bytes, MIN_ALIGN);
          if (block === 0) break;
          this.stepHook?.('refilled-one');
          this.push(block, cls);
        }
      }
      if (first !== 0) this.bump(TC_REFILLS);
    } finally {
      this.mutex.unlock();
    }
    if (first !== 0) this.claimEntry(first, cls);
    return first;
  }

  /** Puts a block that is live in the backend on bin `cls` (refill; lock held). */
  private push(block: number, cls: number): void {
    const u32 = this.u32;
    const headIndex = this.headsWord + cls;
    const at = block >>> 2;
    u32[at + (TC_BLOCK_MARK >>> 2)] = cacheMark(block, this.cookie);
    u32[at + (TC_BLOCK_NEXT >>> 2)] = u32[headIndex]!;
    u32[headIndex] = block;
    this.u8[this.countsByte + cls]!++;
    u32[this.bytesWord]! += cls << 3;
    this.claimEntry(block, cls);
  }

  /**
   * Writes `block`'s owner entry (this thread, class `cls`), counting an entry it takes from
   * another block (refills only: the fast paths never write the table).
   */
  private claimEntry(block: number, cls: number): void {
    const slot = ownerSlot(block);
    const entry = this.u32[slot]!;
    if (entry !== 0 && !namesAddress(entry, block)) this.bump(TC_OWNER_EVICTIONS);
    this.u32[slot] = ownerTag(block) | (cls << OWNER_ENTRY_CLASS_SHIFT) | this.ownerBits;
  }

  /**
   * A free of this thread's block that its bin has no room for: a full bin gives half of it
   * blocks back first (one lock hold) and takes this one; past the byte bound the block goes
   * to the backend.
   */
  private releaseBeyondBin(address: number, cls: number): void {
    if (cls === 0 || cls > TC_CLASSES) throw this.corrupted(this.threadId, cls, address, `its owner entry names class ${cls}, no class of a cache`);
    if (this.u8[this.countsByte + cls]! >= BIN_LIMITS[cls]!) {
      this.mutex.lock();
      try {
        this.flushBin(this.threadId, cls, BIN_LIMITS[cls]! >>> 1);
      } finally {
        this.mutex.unlock();
      }
      this.bump(TC_FLUSHES);
      this.release(address);
      return;
    }
    this.u32[ownerSlot(address)] = 0;
    this.releaseToBackend(address);
  }

  /**
   * A free whose entry does not name this thread, or whose block carries the cache's mark:
   * refuse a block that sits in a cache, clear another thread's entry (a remote free), and
   * let the backend validate and free the rest under the lock. This thread's own block that
   * carries the mark only by its data's chance (it is on no bin) goes to the backend too.
   */
  private releaseLocked(address: number, slot: number, entry: number): void {
    const holder = this.cacheHolding(address, entry);
    if (holder > 0) {
      throw new AllocError('NotAllocated', `address ${hex(address)} is already free: it sits in thread ${holder}'s cache (double free)`);
    }
    if (holder === MARKED) {
      const where = this.binOf(this.threadId, address) !== 0 ? "this thread's cache" : "a thread's cache";
      throw new AllocError('NotAllocated', `address ${hex(address)} carries the cache mark of a block in ${where}: it is already free (double free)`);
    }
    if (namesAddress(entry, address)) {
      // Another thread handed it out: free it to the backend, not into this cache.
      Atomics.compareExchange(this.u32, slot, entry, 0);
      if ((entry & ENTRY_OWNER) !== this.ownerBits) this.bump(TC_REMOTE_FREES);
      // A thread that dies here has lost the block it was freeing: live to the backend, its
      // entry gone, so a later free of it is validated and done by the backend.
      this.stepHook?.('remote-cleared');
    }
    this.releaseToBackend(address);
  }

  /** Frees `address` to the arena holding it (another thread's block may lie in another arena). */
  private releaseToBackend(address: number): void {
    const arena = this.arenas.of(address);
    arena.mutex.lock();
    try {
      arena.inner.release(address);
    } finally {
      arena.mutex.unlock();
    }
  }

  // --- flushing ------------------------------------------------------------------------

  /** True when this thread's cache holds no block (a racy-free read: only it writes there). */
  isEmpty(): boolean {
    return this.u32[this.bytesWord] === 0;
  }

  /** Gives every block this thread holds back to the backend, in one lock hold. */
  flushAll(): void {
    if (!this.holdsBlocks(this.threadId)) return;
    this.mutex.lock();
    try {
      for (let cls = 1; cls <= TC_CLASSES; cls++) this.flushBin(this.threadId, cls, TC_BIN_LIMIT + 1);
    } finally {
      this.mutex.unlock();
    }
    this.bump(TC_FLUSHES);
  }

  /**
   * Gives back the blocks in the record of `threadId`, a thread that is gone (its slot is
   * being released or reaped, so nothing writes the record any more). The links are followed,
   * bounded, and each block checked before it is freed; what cannot be trusted is left
   * alone (a leak, never a free of something that may be live) and described. A record that
   * holds nothing needs no lock: the dead thread may have died holding it, and a reaper whose
   * repair of it failed must not report the empty cache as a second failure.
   * @returns one note per block or bin given up on
   */
  reap(threadId: number): string[] {
    const notes: string[] = [];
    if (!this.holdsBlocks(threadId)) return notes;
    const arena = this.arenas.ofThread(threadId);
    arena.mutex.lock();
    try {
      for (let cls = 1; cls <= TC_CLASSES; cls++) {
        try {
          this.flushBin(threadId, cls, TC_BIN_LIMIT + 1, arena);
        } catch (error) {
          notes.push(
            `thread ${threadId}'s cache, class ${cls}: ${error instanceof Error ? error.message : String(error)}; the rest of the bin is left allocated`,
          );
          this.clearBin(threadId, cls);
        }
      }
      const record = cacheRecordOffset(threadId);
      this.u32[(record + TC_BYTES) >>> 2] = 0;
    } finally {
      arena.mutex.unlock();
    }
    return notes;
  }

  /**
   * @throws AllocError `HeapCorrupted` when `block`, on bin `cls` of `threadId`, lies outside
   *   `arena`, that thread's home, where its cache takes every block
   */
  private checkInArena(threadId: number, cls: number, block: number, arena: Arena): void {
    if (block < arena.start || block >= arena.end) {
      throw this.corrupted(threadId, cls, block, `it lies outside arena ${arena.index}, where the thread's cache takes its blocks`);
    }
  }

  /**
   * Frees up to `limit` blocks from the front of bin `cls` of `threadId`'s record to `arena`,
   * that thread's home; call holding its heap lock. Each block is unlinked (the head moves
   * first), its mark and its entry cleared, then freed.
   * @throws AllocError `HeapCorrupted` for a link that is no cached block, a block outside
   *   the arena, or a block the backend does not hold as live
   */
  private flushBin(threadId: number, cls: number, limit: number, arena: Arena = this.arenas.home): void {
    const u32 = this.u32;
    const record = cacheRecordOffset(threadId);
    const headIndex = ((record + TC_HEADS) >>> 2) + cls - 1;
    const countIndex = record + TC_COUNTS + cls - 1;
    for (let freed = 0; freed < limit; freed++) {
      const block = u32[headIndex]!;
      if (block === 0) return;
      if (freed === TC_BIN_LIMIT) throw this.corrupted(threadId, cls, block, `the bin holds more than ${TC_BIN_LIMIT} blocks (a cycle?)`);
      const at = block >>> 2;
      if (!this.isBlockAddress(block) || u32[at + (TC_BLOCK_MARK >>> 2)] !== cacheMark(block, this.cookie)) {
        throw this.corrupted(threadId, cls, block, 'its mark was overwritten (a write after free?)');
      }
      const next = u32[at + (TC_BLOCK_NEXT >>> 2)]!;
      if (next !== 0 && !this.isBlockAddress(next)) throw this.corrupted(threadId, cls, block, `its link ${hex(next)} is no block address`);
      u32[headIndex] = next;
      this.stepHook?.('flush-popped');
      if (this.u8[countIndex]! > 0) this.u8[countIndex]!--;
      const bytes = (record + TC_BYTES) >>> 2;
      u32[bytes] = Math.max(0, u32[bytes]! - (cls << 3));
      u32[at + (TC_BLOCK_MARK >>> 2)] = 0;
      // From here on the block is the backend's, so its entry goes (whatever class it says).
      const slot = ownerSlot(block);
      if ((u32[slot]! & ENTRY_NOT_CLASS) === (ownerTag(block) | ((threadId - 1) << OWNER_ENTRY_OWNER_SHIFT))) u32[slot] = 0;
      this.checkInArena(threadId, cls, block, arena);
      try {
        arena.inner.release(block);
      } catch (error) {
        if (!(error instanceof AllocError)) throw error;
        throw this.corrupted(threadId, cls, block, `the backend does not hold it as live (${error.message})`);
      }
    }
  }

  /** Empties bin `cls` of `threadId`'s record without freeing its blocks (given up on). */
  private clearBin(threadId: number, cls: number): void {
    const record = cacheRecordOffset(threadId);
    this.u32[((record + TC_HEADS) >>> 2) + cls - 1] = 0;
    this.u8[record + TC_COUNTS + cls - 1] = 0;
  }

  /** True when `threadId`'s cache record holds blocks (or a bin head). */
  holdsBlocks(threadId: number): boolean {
    return this.u32[(cacheRecordOffset(threadId) + TC_BYTES) >>> 2] !== 0 || this.hasLeftovers(threadId);
  }

  /** True when `threadId`'s record has a bin head although its block count says empty. */
  private hasLeftovers(threadId: number): boolean {
    const heads = (cacheRecordOffset(threadId) + TC_HEADS) >>> 2;
    for (let cls = 0; cls < TC_CLASSES; cls++) if (this.u32[heads + cls] !== 0) return true;
    return false;
  }

  // --- what the cache knows of an address ----------------------------------------------

  /**
   * Refuses an address that sits in a cache (for `usableSize`, `realloc`, `dealloc`): it is
   * free to the program though live to the backend.
   * @throws AllocError `NotAllocated` when it does
   */
  refuseCached(address: number): void {
    const holder = this.cacheHolding(address, this.u32[ownerSlot(address)]!);
    if (holder > 0) throw new AllocError('NotAllocated', `address ${hex(address)} is free: it sits in thread ${holder}'s cache`);
    if (holder === MARKED) {
      throw new AllocError('NotAllocated', `address ${hex(address)} carries the cache mark of a block in a thread's cache: it is free`);
    }
  }

  /**
   * Whether a cache holds `address`, whose owner-table entry is `entry`: 0 when the block does
   * not carry the cache's mark; else the thread its entry names, or `MARKED` when the entry
   * names another address (or none). The mark is the answer, as for a block of another
   * thread's bins, which only that thread may walk; this thread walks its own bins, so its
   * own live block whose data only matches the mark (one chance in 2^32) is not refused.
   */
  private cacheHolding(address: number, entry: number): number {
    if (this.u32[(address + TC_BLOCK_MARK) >>> 2] !== cacheMark(address, this.cookie)) return 0;
    if (!namesAddress(entry, address)) return MARKED;
    if ((entry & ENTRY_OWNER) === this.ownerBits && this.binOf(this.threadId, address) === 0) return 0;
    return ((entry & ENTRY_OWNER) >>> OWNER_ENTRY_OWNER_SHIFT) + 1;
  }

  /**
   * Forgets what the owner table says of `address`, a block the backend just handed out or
   * resized without the cache: its next free takes the locked, validated way.
   */
  forget(address: number): void {
    forgetCacheOwner(this.u32, address);
  }

  /** The class of the bin of `threadId` holding `address`, or 0 (bounded walks). */
  private binOf(threadId: number, address: number): number {
    const heads = (cacheRecordOffset(threadId) + TC_HEADS) >>> 2;
    for (let cls = 1; cls <= TC_CLASSES; cls++) {
      let block = this.u32[heads + cls - 1]!;
      for (let steps = 0; block !== 0 && steps <= TC_BIN_LIMIT && this.isBlockAddress(block); steps++) {
        if (block === address) return cls;
        block = this.u32[(block + TC_BLOCK_NEXT) >>> 2]!;
      }
    }
    return 0;
  }

  // --- checks and figures ----------------------------------------------------------------

  /**
   * Verifies this thread's cache, holding the heap lock: every bin's list is as long as its
   * count and at most `binLimitOf(c)`, every block carries its mark, is on one bin only, is
   * named this thread's block of its class by its owner entry when the entry is its own
   * (another address's block may have taken the entry since), and is live in the backend
   * with room for its class; the record's totals match. Then verifies that no free registry
   * slot's record holds a block (a cache left behind). Other live threads' caches are theirs
   * to verify: they change without any lock.
   * @throws AllocError `HeapCorrupted` naming the first violation
   */
  verify(registry: ThreadRegistry): void {
    const u32 = this.u32;
    const home = this.arenas.home;
    const seen = new Set<number>();
    let blocks = 0;
    let bytes = 0;
    for (let cls = 1; cls <= TC_CLASSES; cls++) {
      let length = 0;
      for (let block = u32[this.headsWord + cls]!; block !== 0; block = u32[(block + TC_BLOCK_NEXT) >>> 2]!) {
        if (++length > binLimitOf(cls)) throw this.corrupted(this.threadId, cls, block, `the bin holds more than its ${binLimitOf(cls)} blocks (a cycle?)`);
        if (!this.isBlockAddress(block)) throw this.corrupted(this.threadId, cls, block, 'it is no block address of the arena');
        this.checkInArena(this.threadId, cls, block, home);
        if (u32[(block + TC_BLOCK_MARK) >>> 2] !== cacheMark(block, this.cookie)) throw this.corrupted(this.threadId, cls, block, 'its mark was overwritten');
        if (seen.has(block)) throw this.corrupted(this.threadId, cls, block, 'it is on a bin twice');
        seen.add(block);
        const entry = u32[ownerSlot(block)]!;
        if (namesAddress(entry, block)) {
          const expected = ownerTag(block) | (cls << OWNER_ENTRY_CLASS_SHIFT) | this.ownerBits;
          if (entry !== expected)
            throw this.corrupted(this.threadId, cls, block, `its owner entry ${hex(entry)} does not say this thread's block of this class`);
        }
        let usable: number;
        try {
          usable = this.backend.usableSize(block);
        } catch (error) {
          throw this.corrupted(this.threadId, cls, block, `the backend does not hold it as live (${error instanceof Error ? error.message : String(error)})`);
        }
        if (usable < cls << 3) throw this.corrupted(this.threadId, cls, block, `its ${usable} usable bytes are fewer than its class's ${cls << 3}`);
        blocks++;
        bytes += cls << 3;
      }
      if (length !== this.u8[this.countsByte + cls]) {
        throw this.corrupted(this.threadId, cls, 0, `the bin's count is ${this.u8[this.countsByte + cls]} but its list holds ${length} blocks`);
      }
    }
    if (bytes !== u32[this.bytesWord]) {
      throw new AllocError(
        'HeapCorrupted',
        `thread ${this.threadId}'s cache holds ${blocks} blocks of ${bytes} bytes, but its record says ${u32[this.bytesWord]} bytes`,
      );
    }
    for (let threadId = 1; threadId <= registry.maxThreads; threadId++) {
      if (threadId === this.threadId || registry.state(threadId) !== SlotState.free) continue;
      if (this.holdsBlocks(threadId)) {
        throw new AllocError(
          'HeapCorrupted',
          `thread slot ${threadId} is free but its cache still holds blocks (a cache left behind by a thread that is gone: heap.recover() gives it back)`,
        );
      }
    }
  }

  /** Every thread's cache figures, summed (records written by other threads: a snapshot). */
  static figures(memory: HeapMemory, maxThreads: number): ThreadCacheFigures {
    const { u32, u8 } = memory;
    const figures: ThreadCacheFigures = { blocks: 0, bytes: 0, refills: 0, flushes: 0, remoteFrees: 0, ownerEvictions: 0 };
    for (let threadId = 1; threadId <= maxThreads; threadId++) {
      const offset = cacheRecordOffset(threadId);
      const record = offset >>> 2;
      const bytes = u32[record + (TC_BYTES >>> 2)]!;
      figures.bytes += bytes;
      if (bytes !== 0) for (let cls = 0; cls < TC_CLASSES; cls++) figures.blocks += u8[offset + TC_COUNTS + cls]!;
      figures.refills += u32[record + (TC_REFILLS >>> 2)]!;
      figures.flushes += u32[record + (TC_FLUSHES >>> 2)]!;
      figures.remoteFrees += u32[record + (TC_REMOTE_FREES >>> 2)]!;
      figures.ownerEvictions += u32[record + (TC_OWNER_EVICTIONS >>> 2)]!;
    }
    return figures;
  }

  // --- helpers ---------------------------------------------------------------------------

  /** An 8-aligned address inside the arena. */
  private isBlockAddress(address: number): boolean {
    return (address - this.arenaStart) >>> 0 < this.arenaBytes && (address & 7) === 0;
  }

  /** Adds one to a counter of this thread's record. */
  private bump(field: number): void {
    this.u32[(cacheRecordOffset(this.threadId) + field) >>> 2]!++;
  }

  private corrupted(threadId: number, cls: number, block: number, why: string): AllocError {
    const what = block === 0 ? '' : ` holds ${hex(block)}, but ${why}`;
    return new AllocError('HeapCorrupted', `thread ${threadId}'s cache bin of class ${cls} (${cls << 3} bytes)${what === '' ? `: ${why}` : what}`);
  }
}
