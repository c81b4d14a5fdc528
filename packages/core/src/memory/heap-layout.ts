/**
 * The layout of a heaplab heap in its `SharedArrayBuffer`: every byte offset that more than
 * one thread agrees on is named here, and only here.
 *
 * ```text
 *  buffer offset
 *  0        +------------------------------------------+  control region (CONTROL_BYTES = 4 MiB,
 *           | superblock header        (SB_*)          |  committed lazily: untouched bytes cost
 *  64       | lock records, 8 x 64 B   (LOCK_*)        |  nothing)
 *  576      | backend name, module URL, options JSON   |
 *  2048     | pool tables, 3 x 64 x 8 B (POOL_*)       |  one per arena (ARENA_*)
 *  3584     | unused                                   |
 *  4096     | thread registry, 256 x 128 B (SLOT_*)    |
 *  36864    | QSBR domain + 256 x 32 B records (QSBR_*)|
 *  45120    | recovery record (RECOVERY_*)             |
 *  45504    | backend counters, 3 x 64 B               |  used/peak/... kept by StateCounters,
 *           |   (BACKEND_COUNTERS)                     |  one block per arena
 *  45696    | unused                                   |
 *  49088    | delayed-free filter (DELAYED_FILTER_*)   |
 *  65536    | thread caches, 256 x 768 B (TC_*)        |  per-thread bins of a locked backend
 *  262144   | block owner table, 64 Ki x 4 B (OWNER_*) |  who handed out each cached-size block
 *  524288   | backend state area (BACKEND_STATE_*)     |  the backend's own control structures,
 *           |                                          |  one after another per arena
 *  4 MiB    +------------------------------------------+  arena: 4 MiB aligned, `arenaBytes`
 *           | allocatable region                       |  long, a multiple of 4 MiB; blocks,
 *           |                                          |  and any metadata a backend keeps in
 *           +------------------------------------------+  its managed memory
 * ```
 *
 * All fields are little-endian 32-bit words (the platform's typed-array order) except the
 * per-thread counters, which are float64 so they never wrap. Addresses are byte offsets into
 * the buffer and always fit in 32 bits (the buffer is at most 4 GiB), so they are stored as
 * unsigned words.
 */

import { HEAP_ALIGN } from '../sizes.js';

/** Bytes before the arena: the control region. Equal to `HEAP_ALIGN` so the arena is aligned. */
export const CONTROL_BYTES = HEAP_ALIGN;

/** 'HPLB' as a little-endian word; written last when a heap is formatted. */
export const HEAP_MAGIC = 0x424c5048;

/** Bumped whenever any offset in this file changes; `attach` refuses other versions. */
export const LAYOUT_VERSION = 5;

// --- superblock header: 64 bytes at offset 0 -------------------------------------------------
//
//  0 magic | 4 layoutVersion | 8 arenaOffset | 12 arenaBytes
// 16 maxThreads | 20 lockTimeoutMs | 24 heapCookie | 28 poolCount (arena 0's)
// 32 backendStateBytes | 36 heapFlags (HeapFlag) | 40 arenaCount
// 44 poolCount of arena 1 | 48 poolCount of arena 2 | 52..63 reserved

/** Byte offset of the magic word; 0 until the heap is fully formatted. */
export const SB_MAGIC = 0;
export const SB_LAYOUT_VERSION = 4;
/** Byte offset of the arena start (always `CONTROL_BYTES`). */
export const SB_ARENA_OFFSET = 8;
/** Byte length of the arena. */
export const SB_ARENA_BYTES = 12;
/** Number of slots in the thread registry. */
export const SB_MAX_THREADS = 16;
/** How long a lock waiter waits before it gives up with `LockTimeout`. */
export const SB_LOCK_TIMEOUT_MS = 20;
/** A random word chosen at format time; backends mix it into their block tags. */
export const SB_HEAP_COOKIE = 24;
/** Number of used entries of the pool table. */
export const SB_POOL_COUNT = 28;
/** Bytes of the backend state area that the backend asked for. */
export const SB_BACKEND_STATE_BYTES = 32;
/** Heap-wide switches chosen at creation (`HeapFlag` bits). */
export const SB_HEAP_FLAGS = 36;
/** Arenas of a locked backend (`ARENA_*`): 1 to `MAX_ARENAS`; 1 for a thread-safe backend. */
export const SB_ARENA_COUNT = 40;
/** Pool counts of arenas 1 and 2, one word each (arena 0's is `SB_POOL_COUNT`). */
export const SB_MORE_POOL_COUNTS = 44;

/** Bits of `SB_HEAP_FLAGS`. */
export const HeapFlag = {
  /** Fill every block with `POISON_BYTE` when it is really freed, so use-after-free shows. */
  poisonFreed: 1,
  /** Checked mode: backends verify their invariants at every operation, fail-fast. */
  checked: 2,
  /**
   * The backend was bundled with core into the application (its `moduleUrl` is the file core
   * ran from at creation), so the stored module URL is the app's bundle: `attach` never
   * imports it and finds the backend only registered in the attaching thread or given.
   */
  bundledBackend: 4,
} as const;
/** Every bit of `HeapFlag`; `attach` refuses a heap with any other bit set. */
export const HEAP_FLAGS_KNOWN = 7;

/** What poisoned memory holds. */
export const POISON_BYTE = 0xdd;

// --- lock records: 8 records of 64 bytes from offset 64 --------------------------------------
//
// A record is padded to 64 bytes so two locks never share a cache line.
//  +0 state: 0 free, else (holder's thread id << 1) | LOCK_WAITERS
//  +4 poisoned: the thread id of a holder that died holding it (0: not poisoned)
//  +8 acquisitions that parked (stats, an atomic add by the waiter before it parks)
//  +12 acquisitions in all | +16 acquisitions whose first compare-and-swap failed, so they
//     spun (and maybe parked) (stats; both plain increments by the holder, which the lock
//     orders) | +20..63 reserved
//
// The holder's id is in the state word itself, so the compare-and-swap that takes the lock
// also records who holds it: there is no instant at which the lock is held by nobody known,
// and a dead holder is always recognised (see mutex.ts).

export const LOCK_TABLE = 64;
export const LOCK_RECORD_BYTES = 64;
export const LOCK_COUNT = 8;
export const LOCK_STATE = 0;
export const LOCK_POISONED = 4;
export const LOCK_CONTENDED = 8;
export const LOCK_ACQUIRED = 12;
export const LOCK_SPUN = 16;
/** Bit of a held lock's state word: a waiter may be parked, so unlock must notify. */
export const LOCK_WAITERS = 1;
/** The holder's thread id sits above the waiters bit. */
export const LOCK_HOLDER_SHIFT = 1;

/** Lock indices and the names errors give them. */
export const LockIndex = {
  /** Serialises every call into a lock-based backend: its only instance, or arena 0's. */
  heap: 0,
  /** Serialises `addMemory` and pool-table updates. */
  pools: 1,
  /** Free for backends that need a lock off their fast path (mimalloc's segment pool). */
  backend0: 2,
  backend1: 3,
  /** Guards the QSBR orphan list (delayed frees left by departed threads). */
  qsbrOrphans: 4,
  /** Serialises writers of the recovery record. */
  recovery: 5,
  /** The heap lock of arena 1 and of arena 2, when a locked backend has them (`ARENA_*`). */
  arena1: 6,
  arena2: 7,
} as const;
export const LOCK_NAMES = ['heap', 'pools', 'backend0', 'backend1', 'qsbr-orphans', 'recovery', 'arena1', 'arena2'];

/**
 * Where each lock sits in the one order locks nest in (docs/lock-order.md), outermost 0: a
 * thread holding a lock takes only locks of a higher rank. Indexed by `LockIndex`.
 *
 * ```text
 *  qsbr-orphans (0) -> pools (1) -> backend0 (2) -> backend1 (3) -> heap (4) -> arena1 (5)
 *    -> arena2 (6) -> recovery (7)
 * ```
 *
 * A drain of the orphan list frees through the backend (orphans, then heap or backend0);
 * `addMemory` records the pool and hands it to the backend (pools, then heap or backend0);
 * recovery is innermost, so its record can be written whatever a thread holds. No
 * backend takes both heap and its own locks, so their relative rank is only a convention.
 */
export const LOCK_RANK = [4, 1, 2, 3, 0, 7, 5, 6];

// --- backend identity: strings at fixed places -----------------------------------------------

/** Backend name, UTF-8, NUL padded. */
export const BACKEND_NAME = 576;
export const BACKEND_NAME_BYTES = 32;
/** URL of the module that exports the backend descriptor, so `attach` can import it. */
export const BACKEND_MODULE = 608;
export const BACKEND_MODULE_BYTES = 480;
/** The backend's normalised options as JSON. */
export const BACKEND_OPTIONS = 1088;
export const BACKEND_OPTIONS_BYTES = 960;

// --- pool tables: one of 64 entries of 8 bytes per arena, from offset 2048 ------------------
//
// Every range given to the backend by `init` or `addMemory`: +0 start, +4 size. Kept by core
// so overlap is refused the same way for every backend. Arena i's table starts at
// `POOL_TABLE + i * POOL_TABLE_BYTES`; its count is `SB_POOL_COUNT` for arena 0, else word
// i - 1 from `SB_MORE_POOL_COUNTS`. A heap of one arena uses the first table only.

export const POOL_TABLE = 2048;
export const POOL_ENTRY_BYTES = 8;
export const MAX_POOLS = 64;
export const POOL_TABLE_BYTES = MAX_POOLS * POOL_ENTRY_BYTES;
export const POOL_START = 0;
export const POOL_SIZE = 4;

// --- thread registry: up to 256 slots of 128 bytes from offset 4096 --------------------------
//
// Thread id = slot index + 1, so 0 means "no thread" in every owner field.
//  +0 state word: generation << SLOT_GENERATION_SHIFT | SlotState; the generation is bumped
//     by every claim, so a handle that remembers the word it claimed can never release (or
//     use) the slot once another handle holds it: its compare-and-swap fails
//  +4 reserved | +8 Node threadId of the holder | +12 reserved
//  +16 call counters: COUNTER_COUNT float64, written only by the slot's own thread

export const REGISTRY = 4096;
export const SLOT_BYTES = 128;
export const MAX_THREADS_LIMIT = 256;
export const SLOT_STATE = 0;
export const SLOT_NODE_THREAD = 8;
export const SLOT_COUNTERS = 16;
/** The state takes the low two bits of a slot's state word; the generation the rest. */
export const SLOT_GENERATION_SHIFT = 2;
export const SLOT_STATE_MASK = 3;

/** States of a registry slot. */
export const SlotState = {
  /** Nobody holds it; `attach` may claim it with compare-and-swap. */
  free: 0,
  /** A live thread holds it. */
  active: 1,
  /** Being released by its own thread (`detach`): the backend is taking back what it owned. */
  releasing: 2,
  /**
   * Being reaped by another thread after its holder died, whether it died attached or in
   * the middle of its own `detach` (the slot was left `releasing`). Only the reaper that
   * moved the slot here finishes the release.
   */
  reaping: 3,
} as const;

/** Index of each per-thread counter, in float64 units from `SLOT_COUNTERS`. */
export const Counter = {
  malloc: 0,
  free: 1,
  calloc: 2,
  realloc: 3,
  alignedAlloc: 4,
  failed: 5,
  freeDelayed: 6,
} as const;
export const COUNTER_COUNT = 7;

// --- QSBR domain: 64 bytes at 36864, then one 32-byte record per thread ---------------------
//
// Quiescent-state-based reclamation (see qsbr.ts). Sequences are odd int32 values compared
// with wrap-around; 0 in a record means the thread is offline and holds nothing back.
//  +0 writeSequence (advanced by 2) | +4 readSequence (cached minimum over online records)
//  +8 orphanHead (first chunk of delayed frees left by departed threads, under qsbrOrphans)
//  +12 heldLimitBytes | +16 orphanHeldBytes (usable bytes in orphaned chunks, under
//  qsbrOrphans) | +20..63 reserved
// record of thread t at QSBR_RECORDS + (t - 1) * QSBR_RECORD_BYTES:
//  +0 sequence (last write sequence seen at a quiescent point; 0 offline)
//  +4 queueHead | +8 queueTail (chunks of this thread's pending delayed frees, in the arena)
//  +12 heldBytes (usable bytes waiting in the queue) | +16 deferredAdvances
//  +20 pendingCount | +24 peakHeldBytes | +28 reserved

export const QSBR_DOMAIN = 36864;
export const QSBR_WRITE_SEQUENCE = 0;
export const QSBR_READ_SEQUENCE = 4;
export const QSBR_ORPHAN_HEAD = 8;
export const QSBR_HELD_LIMIT = 12;
export const QSBR_ORPHAN_HELD = 16;
export const QSBR_RECORDS = QSBR_DOMAIN + 64;
export const QSBR_RECORD_BYTES = 32;
export const QR_SEQUENCE = 0;
export const QR_QUEUE_HEAD = 4;
export const QR_QUEUE_TAIL = 8;
export const QR_HELD_BYTES = 12;
export const QR_DEFERRED = 16;
export const QR_PENDING = 20;
export const QR_PEAK_HELD = 24;

// --- recovery record: 384 bytes at 45120 ----------------------------------------------------
//
// What recovery after a thread's death could not give back, and why the last attempt failed.
// Written under the `recovery` lock; read by `stats()` and by the error of a poisoned lock.
//  +0 lostBytes (float64: bytes no structure accounts for after a repair)
//  +8 lostBlocks | +12 recoveries that succeeded | +16 recoveries that failed
//  +20 the dead thread of the last failure | +24 length of its message
//  +32 the last failure's message, UTF-8 (RECOVERY_MESSAGE_BYTES)

export const RECOVERY = 45120;
export const RECOVERY_LOST_BYTES = 0;
export const RECOVERY_LOST_BLOCKS = 8;
export const RECOVERY_SUCCEEDED = 12;
export const RECOVERY_FAILED = 16;
export const RECOVERY_LAST_THREAD = 20;
export const RECOVERY_MESSAGE_LENGTH = 24;
export const RECOVERY_MESSAGE = 32;
export const RECOVERY_MESSAGE_BYTES = 352;

// --- backend counters: 64 bytes per arena at 45504 ------------------------------------------
//
// The byte counts every backend reports, in one place so the peak is raised by one piece of
// code (backend/counters.ts). u32 words, plain reads and writes: a locked backend writes
// them under the heap lock (its arena's); a thread-safe backend under its own lock or not at
// all. Arena i's block starts `i * BACKEND_COUNTERS_BYTES` further on.
//  +0 totalBytes | +4 usedBytes | +8 peakUsedBytes | +12 requestedBytes | +16 grantedBytes
//  +20 liveBlocks | +24 freeBlocks | +28 metadataBytes | +32..63 reserved

export const BACKEND_COUNTERS = 45504;
export const BACKEND_COUNTERS_BYTES = 64;
/** Word index (from `BACKEND_COUNTERS`) of each counter. */
export const BackendCounter = {
  total: 0,
  used: 1,
  peak: 2,
  requested: 3,
  granted: 4,
  live: 5,
  free: 6,
  metadata: 7,
} as const;

// --- delayed-free filter: 64 + 16384 bytes at 49088 -----------------------------------------
//
// Lets `free` refuse a block that waits for a delayed free (any thread's) without searching
// on the common path. A word counts the blocks waiting in every thread's queue; while it is
// 0, `free` looks no further. The buckets are a counting filter: bucket `hash(address)`
// counts the waiting blocks that hash there, so a 0 bucket proves the address is not
// waiting, and only a nonzero one makes `free` search the queues.
//  +0 pending (blocks waiting, all threads; alone on its cache line) | +4..63 reserved
//  +64 DELAYED_FILTER_BUCKETS uint16 counters

export const DELAYED_FILTER = 49088;
export const DF_PENDING = 0;
export const DF_BUCKETS = 64;
export const DELAYED_FILTER_BUCKETS = 8192;

// --- thread caches: 256 records of 768 bytes from offset 65536 --------------------------------
//
// The thread cache in front of a locked backend (tcache/thread-cache.ts): per thread, bins of
// blocks it allocated and freed, so most mallocs and frees take no lock. Class c (1..128)
// holds blocks of at least 8c usable bytes and serves requests of 8c - 7 to 8c bytes (0 to 8
// for c = 1). A record is written only by its thread, with plain stores (no atomics on the
// fast path), and read by others only to report figures, or to flush it once its thread is
// gone (the slot is being reaped: nothing writes it any more).
//
// record of thread t at THREAD_CACHES + (t - 1) * TC_RECORD_BYTES:
//  +0 bytes held (sum of 8c over held blocks; 0 exactly when every bin is empty; the
//     blocks held are the sum of the counts, kept nowhere else so a push or a pop writes
//     one word less)
//  +4 refills | +8 flushes | +12 remote frees (frees of blocks another thread handed out)
//  +16 owner evictions (entries a refill overwrote that named another block: that block's
//      next free takes the locked, validated way)
//  +20..31 reserved
//  +32  counts: TC_CLASSES bytes, blocks in each bin (count of class c at +32 + c - 1)
//  +160 heads: TC_CLASSES words, the first block of each bin (0: empty)
//  +672..767 reserved
//
// A cached block's first two words are the cache's (its usable size is at least 8):
//
//   block +0  next block in the bin, or 0 (the list ends; no cycle: a walk stops after
//             TC_BIN_LIMIT + 1 blocks and reports the rest as corruption)
//   block +4  the cache mark: cacheMark(address, cookie), which says the block is cached:
//             a block freed again while cached is recognised by it (the owner table does not
//             say cached), and a use after free that wrote over the link is caught at the
//             next pop; a pop clears it
//
// Invariants (checked by `ThreadCache.verify`):
//  - every block on bin c is a live block of the backend with at least 8c usable bytes,
//    carries its mark, and is on no other bin of any cache;
//  - bin c holds at most binLimitOf(c) <= TC_BIN_LIMIT blocks; its count equals its list's length except for
//    one instant of a push or a pop, which a reaper's walk tolerates (it follows the links);
//  - a free registry slot's record is empty.

export const THREAD_CACHES = 65536;
export const TC_RECORD_BYTES = 768;
export const TC_BYTES = 0;
export const TC_REFILLS = 4;
export const TC_FLUSHES = 8;
export const TC_REMOTE_FREES = 12;
export const TC_OWNER_EVICTIONS = 16;
export const TC_COUNTS = 32;
export const TC_HEADS = 160;
/** Size classes: class c serves requests up to 8c bytes. */
export const TC_CLASSES = 128;
/** Bytes per size class step. */
export const TC_CLASS_BYTES = 8;
/** The largest request a thread cache serves; larger ones go to the backend under its lock. */
export const TC_MAX_REQUEST = TC_CLASSES * TC_CLASS_BYTES;
/**
 * The most blocks any bin holds (a walk of a bin stops after one more). Each class's own
 * bound, `binLimitOf(c)` in thread-cache.ts, is 16, or `TC_BIN_REFILLS` refill batches when
 * that is larger, at most this: 128 for 8- and 16-byte blocks, 32 for 64-byte ones.
 */
export const TC_BIN_LIMIT = 128;
/** The bound of a bin whose refill batch is small. */
export const TC_MIN_BIN_BLOCKS = 16;
/**
 * Refill batches a bin holds. A thread's live count of a class drifts up and down; while the
 * drift stays within the bin, its mallocs and frees take no lock, and past it each swing costs
 * a flush and a refill, each a lock hold of a whole batch of backend calls. With two batches
 * (the earlier bound), bench-malloc-thread's two threads flushed and refilled about once per
 * 800 iterations each, which was 12 % of the heap lock's holds and 25 to 48 % of the time it
 * was held; with three or four, about 400 refills and 10 flushes per two million iterations,
 * almost all of them the first fill (`tools/line-sharing.js` counts them). Four, for margin:
 * the bins this raises are those of blocks of 16 to 96 bytes, by at most 9 KiB a thread, and
 * `TC_BYTE_LIMIT` still bounds the whole cache.
 */
export const TC_BIN_REFILLS = 4;
/** The most blocks one refill takes under one hold of the heap lock. */
export const TC_MAX_BATCH = 64;
/**
 * The bytes one refill takes (at least one block, at most `TC_MAX_BATCH`): 64 blocks of 8
 * bytes, 8 of 64, one from 512. Two things pull against each other. Spare blocks a refill
 * takes sit in the cache until this thread asks for the class again, and when it frees
 * little of what it allocates (a producer whose blocks a consumer frees) they are footprint
 * nobody uses: so not many large ones. But two threads refilling from one backend take
 * neighbouring runs of its memory, and a cache line holding both threads' blocks bounces
 * between their cores at every write: so a run of small blocks should span many lines (512
 * bytes: 8 lines, of which only the two at its ends may be shared).
 */
export const TC_REFILL_BYTES = 512;
/** The most bytes (sum of 8c) one thread's cache holds; beyond it frees go to the backend. */
export const TC_BYTE_LIMIT = 128 * 1024;
/** Byte offset of a cached block's link word and mark word. */
export const TC_BLOCK_NEXT = 0;
export const TC_BLOCK_MARK = 4;

// --- block owner table: 65536 words from offset 262144 ---------------------------------------
//
// Lets a free tell, without the heap lock and without the backend's metadata, that a block is
// one this thread's cache handed out, and of which class: entry (address >>> 3) & OWNER_MASK
// holds the rest of the address as a tag, so an entry names exactly one address. Written by
// a refill for each block it takes from the backend, cleared when a block goes back to the
// backend; a cached malloc or free only reads it, so in a steady loop no thread writes a
// table line (two threads writing lines they share cost each other up to half again an
// iteration). Whether the block sits in its owner's cache is said by the block's mark
// (TC_BLOCK_MARK), not here. A later block whose address maps to the same entry overwrites
// it; a free that finds another address's entry takes the slow, locked, fully validated way.
//
//   bit  31 30 29 ........... 17 16 ....... 9 8 ........ 1  0
//        [ 0  0 | tag: addr >>> 19 | class 1..128 | owner - 1 | 0 ]
//
// An entry is a single aligned word, so a racing reader sees the whole old or the whole new
// entry (typed-array accesses to aligned words do not tear).

export const OWNER_TABLE = 262144;
export const OWNER_ENTRIES = 65536;
export const OWNER_INDEX_MASK = OWNER_ENTRIES - 1;
/** Address bits below the tag: 3 (8-byte alignment) + 16 (the index). */
export const OWNER_TAG_SHIFT = 19;
export const OWNER_ENTRY_TAG_SHIFT = 17;
export const OWNER_ENTRY_CLASS_SHIFT = 9;
export const OWNER_ENTRY_CLASS_MASK = 0xff;
export const OWNER_ENTRY_OWNER_SHIFT = 1;
export const OWNER_ENTRY_OWNER_MASK = 0xff;

// --- backend state area ----------------------------------------------------------------------

/** Where the backend's control structures start. */
export const BACKEND_STATE = 524288;
/** The most a backend can ask for in the control region (all its arenas' state together). */
export const BACKEND_STATE_MAX_BYTES = CONTROL_BYTES - BACKEND_STATE;

// --- arenas ----------------------------------------------------------------------------------
//
// A locked backend may run as several instances, each over its own slice of the arena with
// its own heap lock, state, counters and pool table (docs/arenas.md): a thread allocates from
// arena `(threadId - 1) % arenaCount` first, and frees into the arena whose slice holds the
// block. Arena i has:
//   lock        ARENA_LOCKS[i]                      (heap, arena1, arena2)
//   state       BACKEND_STATE + i * arenaStateStride(stateBytes)
//   counters    BACKEND_COUNTERS + i * BACKEND_COUNTERS_BYTES
//   pool table  POOL_TABLE + i * POOL_TABLE_BYTES, count ARENA_POOL_COUNTS[i]
//   slice       from arenaStart + i * (sliceBytes + arenaStagger(arenaCount)) to the next
//               slice's start (the last slice takes what is left), where sliceBytes is
//               arenaBytes / arenaCount rounded down to 4 MiB

/** The most arenas a heap has: one per heap lock record (`heap`, `arena1`, `arena2`). */
export const MAX_ARENAS = 3;
/** Each arena's heap lock, by arena. */
export const ARENA_LOCKS: readonly number[] = [LockIndex.heap, LockIndex.arena1, LockIndex.arena2];
/** Each arena's pool count word, by arena. */
export const ARENA_POOL_COUNTS: readonly number[] = [SB_POOL_COUNT, SB_MORE_POOL_COUNTS, SB_MORE_POOL_COUNTS + 4];

/**
 * How far past a 4 MiB boundary each next slice starts: the 512 KiB of addresses the owner
 * table's entries cover (`OWNER_*`), split evenly between the arenas and rounded down to a
 * page. Slices 4 MiB apart would map each arena's first blocks, where its threads' working
 * sets begin, onto the same owner entries (the index is `(address >>> 3) & mask`, which
 * repeats every 512 KiB), and two threads would overwrite each other's entries, sending
 * their frees the locked way: basic and slab ran a tenth slower on two arenas than on one.
 * Staggered, the arenas' first 256 KiB (two arenas) or 168 KiB (three) have entries of their
 * own. A hashed index spread them too, but cost a cached free 0.8 to 3.1 ns on one thread and
 * lost the plain index's promise that any run of addresses under 512 KiB has its own
 * entries (docs/arenas.md).
 */
export function arenaStagger(arenaCount: number): number {
  return Math.floor((OWNER_ENTRIES << 3) / arenaCount / 4096) * 4096;
}

/** Bytes between two arenas' backend states: `stateBytes` rounded up to a cache line. */
export function arenaStateStride(stateBytes: number): number {
  return Math.ceil(stateBytes / 64) * 64;
}
