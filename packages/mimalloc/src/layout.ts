/**
 * Every shared structure of the mimalloc backend, drawn once, with a named constant for each
 * field and every invariant stated once. The other files keep these invariants; `check.ts`
 * verifies them.
 *
 * The design is mimalloc v1's (Leijen, Zorn, de Moura, "Mimalloc: Free List Sharding in
 * Action", 2019) over heaplab's shared heap: all state below lives in the `SharedArrayBuffer`,
 * so every thread's backend instance sees the same allocator.
 *
 * ## Addresses and words
 * Addresses are byte offsets into the buffer, below 2^32, handled as unsigned numbers (never
 * `| 0`). Every field is a 32-bit little-endian word read through `Uint32Array` (atomic ones
 * through `Atomics` on the same views); a structure at byte address `a` has field `F` at word
 * `(a + F) >>> 2`.
 *
 * ## The control state (at `ctx.stateOffset`, `STATE_BYTES` long)
 *
 * ```text
 *  0      +---------------------------------------------+
 *         | ST_MAGIC          'MIM4' once formatted      |
 *  4      | ST_FLAGS          bit 0: secure mode         |
 *  8      | ST_ABANDONED      first abandoned segment    |  segment lock
 *  12     | ST_ABANDONED_COUNT abandoned segments        |  written under the segment lock,
 *         |                   (read without it as a hint)|  read racily as a hint
 *  16     | ST_PEAK_USED      highest usedBytes sampled  |  Atomics max
 *  20     | ST_SEGMENTS_TOTAL 4 MiB segments managed     |  segment lock
 *  24..63 | reserved                                     |
 *  64     +---------------------------------------------+
 *         | ST_POOL: BitmapPageAllocator state, one bit  |  segment lock
 *         | per 4 MiB segment of the arena               |
 *  512    +---------------------------------------------+
 *         | ST_SEGMENT_MAP: 1024 words, one per 4 MiB of |  written under the segment lock,
 *         | the 4 GiB address space (index address>>>22)|  read by every free
 *  4608   +---------------------------------------------+
 *         | ST_EMPTY_PAGE: a page descriptor of zeros    |  never written
 *  4736   +---------------------------------------------+
 *         | ST_INTENT: what the segment lock's holder is |  segment lock
 *         | changing (op, segment, span, heap)           |
 *  4752   +---------------------------------------------+
 *         | reserved, to the next cache line             |
 *  4800   +---------------------------------------------+
 *         | ST_HEAPS: MAX_HEAPS heap records of          |
 *         | HEAP_BYTES, thread id t at (t - 1) * ...     |
 *  611008 +---------------------------------------------+
 *         | ST_HELD_PAGES: one held-page record per page |  written by the page's owner
 *         | slot of the address space (delayedPageReuse) |  (or whoever abandons/reclaims it)
 *         +---------------------------------------------+  STATE_BYTES
 * ```
 *
 * ## What the segment lock's holder leaves when it dies (`recover`, `segment.ts`)
 *
 * The segment lock guards the pool, the segment map, segment headers' ownership, the
 * abandoned list, the segment caches and huge blocks. Its holder first writes what it is
 * about to change in the intent record, then changes it, then clears the record:
 *
 * ```text
 *  +0 IN_OP       INTENT_* (0 = nothing in progress)
 *  +4 IN_SEGMENT  the segment (0 until the pool has given one, for INTENT_ALLOC)
 *  +8 IN_SPAN     segments spanned; for INTENT_ADD_MEMORY the range's bytes
 *  +12 IN_HEAP    INTENT_CACHE: the heap whose cache is being given back
 * ```
 *
 * A thread that dies holding the lock leaves the record naming the one operation it was
 * in, and `recover` rolls it back (an allocation nobody received) or forward (a release,
 * a cache being given back), then rebuilds from the segment map, the one record every
 * operation writes last or first: the pool from core's pool table (`ctx.pools`) and the map,
 * the abandoned list and its count from the headers whose owner is 0.
 *
 * A segment map word is 0 for a segment not in use, else `kind | pageShift << 8`:
 * `SEGMENT_SMALL`, `SEGMENT_MEDIUM`, `SEGMENT_LARGE` (pages with descriptors), `SEGMENT_HUGE`
 * (the first segment of a huge block) or `SEGMENT_HUGE_TAIL` (the others). Free reads it to
 * refuse addresses in segments not in use without touching them, and to find the page shift.
 *
 * ## A heap record (one per thread id, `HEAP_BYTES`)
 *
 * ```text
 *  0      HP_DIRECT     129 words: page descriptor for each word size 0..128 (sizes up
 *                       to 1 KiB), the first page of that size's bin, else the empty page
 *  528    HP_QUEUES     BIN_QUEUES x { first, last } page descriptors (0 = empty); the
 *                       last queue, BIN_FULL, holds the pages found full
 *  1088   HP_DELAYED_FREE  first block of the thread_delayed_free list (Atomics: other
 *                       threads push, the owner takes the whole list)
 *  1092   HP_SMALL_SEGMENTS   owned small segments with a free page slot (linked by SG_NEXT)
 *  1096   HP_MEDIUM_SEGMENTS  likewise for medium segments
 *  1100   HP_HEARTBEAT  slow-path calls, passed to the deferred-free callback
 *  1104   HP_RANDOM     xorshift state for secure mode's keys and shuffles
 *  1108   HP_GENERATION the registry generation of the thread holding this id, written
 *                       when it attaches: a record whose generation differs from the
 *                       slot's, or whose slot is not active, is a dead thread's
 *  1112   HP_RF_RESOLVER Atomics: `threadId | (generation & RESOLVER_GEN_MASK) << 9` of the
 *                       thread finishing this record's remote free for its dead owner
 *                       (0 = nobody); taken by compare-and-swap, from 0 or from a resolver
 *                       that is dead in its turn
 *  1116   HP_ACTIVE     1 while a thread holds this id, 0 after release
 *  1120   HP_RF_STEP    Atomics: `block | RF_*` of the remote free this thread is doing
 *                       (0 = none): the in-flight record, see "A remote free in flight"
 *  1124   HP_RF_PAGE    the page descriptor of that block
 *  1128   HP_RF_SEQ     the page's `PG_COLLECTS` read before the thread_free CAS (RF_PUSHING)
 *  1132   HP_RF_HEAP    the heap whose delayed list gets the block (RF_DELAYING, RF_DELAYED)
 *  1136   HP_HELD_FIRST / 1140 HP_HELD_LAST  the QSBR-held pages of this heap (page
 *                       descriptors linked through their held-page records; 0 = none)
 *  1144   HP_EVENTS     EVENT_COUNT counters of slow-path events (stats)
 *  1216   HP_RETIRED_BINS  RETIRED_BIN_WORDS words, bit `b` of the bins: set when bin `b`
 *                       may hold a retired page, so collecting them visits only those
 *  1228   HP_SEGMENT_CACHE   an empty segment this heap keeps (0 = none), see segment.ts;
 *                       `segment | CACHE_RELEASING` while a thread holding the segment lock
 *                       gives it back (the owner never takes a tagged segment)
 *  1232   HP_RETIRE_DUE  the earliest `PG_RETIRE` heartbeat of its retired pages: the slow
 *                       path looks at them only once the heartbeat reaches it
 *  1236   HP_DELAYED_KEY0 / 1240 HP_DELAYED_KEY1  secure mode's keys for the links of the
 *                       delayed list (0 otherwise), as mimalloc's heap keys
 *  1248   HP_HELD_PAGES / 1252 HP_HELD_BYTES  pages on this heap's held list and the bytes of
 *                       their blocks (capacity * block size), kept with the list
 *  1244   HP_DRAINS     Atomics: odd while a drain holds blocks it took off the delayed list
 *                       (bumped before the take and after the last block is back or freed);
 *                       never reset, so a resolver can tell a list it walked was whole
 *  1256   HP_RB_PAGE    the page descriptor of the blocks in this thread's remote-free
 *                       buffer (0 = empty), see "The remote-free buffer"
 *  1260   HP_RB_COUNT   blocks in the buffer (0..HP_RB_LIMIT)
 *  1264   HP_RB_LIMIT   how many blocks of that page's size the buffer takes
 *                       (`bufferLimit`), set when it opens
 *  1268   reserved, to 1280
 *  1280   HP_BIN_STATS  BIN_STAT_ENTRIES x { allocated, freed, peak } (BIN_STAT_BYTES each),
 *                       with the `stats` option only (0 otherwise): per size class, the
 *                       blocks this thread id allocated and freed (every free it made, remote
 *                       ones included) and the highest `allocated - freed` it reached; entry
 *                       0 counts huge blocks. Plain words written by their thread only, on
 *                       the slow variants of malloc and free (no atomics), wrapping at 2^32;
 *                       never reset (a later thread of the same id adds to them), so the
 *                       sums over thread ids are the heap's since it was formatted. Another
 *                       thread's read may miss its latest counts (`classStats`)
 *  2108   reserved, to 2112
 *  2112   HP_RB_BLOCKS  RB_CAPACITY (64) words: the buffered blocks in the order freed
 *                       (entry 0 first); each entry's block links to the one before it
 *  2368   HEAP_BYTES
 * ```
 *
 * A heap record is written only by its thread (or, once that thread died, by the thread
 * that releases it), except `HP_DELAYED_FREE`, which other threads push onto atomically.
 * From a thread's death to the end of its release (`releaseThread(id, true)`), its record
 * still says `HP_ACTIVE` while its slot is no longer its own; the thread may have died
 * anywhere, its own abandon at detach included (pages half out of their queues, held pages
 * half moved, segments half disowned, its delayed list taken), so in that window its queues,
 * direct table and lists are held to no invariant (`check()` skips them) and the release
 * rebuilds everything from the pages themselves (`dead-heap.ts`).
 *
 * No path keeps a byte or block counter: usedBytes is the walk `sum over in-use pages of
 * used * blockSize`, less the blocks on thread_free and delayed lists (`used` still counts
 * them; the walk counts those lists), plus the huge blocks the segment map names. A counter
 * that a thread updates after the step it counts is wrong for good if the thread dies in
 * between, and no other thread can tell by how much; a walk of what the lists and the map
 * hold is right again as soon as they are (an earlier layout kept per-thread pending and
 * huge counters here, and a worker killed inside a remote free left `check()` failing).
 *
 * ## A segment (4 MiB aligned, `SEGMENT_BYTES`)
 *
 * ```text
 *  S+0     SG_MAGIC      segmentMagic(S, cookie) while in use, 0 after release
 *  S+4     SG_KIND       SEGMENT_SMALL / _MEDIUM / _LARGE / _HUGE
 *  S+8     SG_PAGE_SHIFT 16 (64 KiB pages), 19 (512 KiB) or 22 (one page)
 *  S+12    SG_PAGE_COUNT 64, 8 or 1
 *  S+16    SG_USED_PAGES pages in use
 *  S+20    SG_OWNER      thread id of the owning heap; 0 = abandoned (Atomics)
 *  S+24    SG_NEXT / S+28 SG_PREV  links of the owner's free-slot list, or of the
 *                        abandoned list (SG_NEXT only)
 *  S+32    SG_SPAN       segments spanned (huge: several; else 1)
 *  S+36    SG_HUGE_BLOCK huge: the block's address
 *  S+40    SG_HUGE_SIZE  huge: the block's usable bytes
 *  S+64    page descriptors: SG_PAGES, PAGE_DESCRIPTOR_BYTES each, page i at
 *          S + SG_PAGES + i * 128 (huge segments have none)
 *  S+SEGMENT_HEADER_BYTES  page 0's memory (page 0 is shortened by the header); page i
 *          (i > 0) starts at S + (i << pageShift)
 * ```
 *
 * ## A page descriptor (`PAGE_DESCRIPTOR_BYTES`)
 *
 * Descriptors start 64 bytes past a multiple of 128, so the first 64 bytes of each are one
 * cache line; it holds every field that malloc's and free's fast paths read.
 *
 * ```text
 *  +0  PG_FLAGS       PAGE_IN_USE | PAGE_IN_FULL | PAGE_ALIGNED
 *  +4  PG_BLOCK_SIZE  bytes per block (a multiple of 8)
 *  +8  PG_START       address of block 0
 *  +12 PG_CAPACITY    blocks the free list was extended over (0 when not in use)
 *  +16 PG_EXTENT      bytes of the extended blocks: capacity * block size, so the malloc
 *                     fast path checks the link it pops with one subtraction and compare
 *  +20 PG_FREE        first block of the free list (allocation pops here)
 *  +24 PG_LOCAL_FREE  first block of the local_free list (the owner frees here)
 *  +28 PG_THREAD_FREE Atomics: first block of the thread_free list | delayed state (2 bits)
 *  +32 PG_USED        blocks handed out and not yet freed back to free/local_free
 *  +36 PG_OWNER       thread id of the owning heap, 0 while abandoned (Atomics)
 *  +40 PG_NEXT / +44 PG_PREV  links of the heap's page queue (descriptor addresses)
 *  +48 PG_BIN         size-class bin
 *  +52 PG_GRID_INVERSE  the block size's odd part's inverse modulo 2^32
 *  +56 PG_GRID_SHIFT    the block size's trailing zero bits
 *  +60 PG_GRID_LIMIT    floor((2^32 - 1) / block size)
 *                     these three let free test "a multiple of the block size" with one
 *                     multiply and a rotate, no division (see `onBlockGrid`)
 *  --- second cache line: the slow paths' fields
 *  +64 PG_KEY0 / +68 PG_KEY1  secure mode's per-page keys for encoded links
 *  +72 PG_RETIRE      retired: the heartbeat at which it is freed if still empty (0 = not
 *                     retired)
 *  +76 PG_COLLECTS    Atomics: odd while a collector holds blocks it took off thread_free
 *                     (bumped before the take and after the splice). It survives the page's
 *                     reuse and its segment's (never reset), so a remote free's record that
 *                     read it before its CAS can learn later that no take happened since
 *  +80 PG_RESERVED    blocks that fit in the page
 *  +84..127 reserved
 * ```
 *
 * Page invariants:
 * 1. `used + |free| + |local_free| = capacity <= reserved`; blocks in thread_free and in any
 *    heap's delayed list are counted in `used` (they are freed, but the owner has not
 *    collected them yet).
 * 2. A page is in use iff `PAGE_IN_USE` is set, and then `capacity >= 1`; a free slot has
 *    capacity 0, so every free into it is refused. An owned page in use is in exactly one
 *    page queue of its owner's heap: `BIN_FULL` iff `PAGE_IN_FULL`, else the queue of its
 *    bin. An abandoned page (`PG_OWNER = 0`) is in no queue.
 * 3. Block `k` of a page is at `PG_START + k * PG_BLOCK_SIZE`; blocks `k < capacity` have
 *    been on a free list at least once; blocks beyond are untouched. `PG_EXTENT` is
 *    `capacity * PG_BLOCK_SIZE`: every link on the page's lists is 0 or an address `a` with
 *    `a - PG_START < PG_EXTENT` (unsigned), on the block grid.
 * 4. The direct table entry for word size `w` is the first page of the queue of `w`'s bin
 *    when it has one, else the empty page (whose `free` is 0, so allocation falls to the
 *    slow path without a test for "no page").
 *
 * ## Delayed page reuse (option `delayedPageReuse`, CPython's QSBR over mimalloc)
 *
 * Lock-free readers may still look at a block freed with a plain `free` (they validate what
 * they read afterwards), which is safe only while its memory keeps its size class. So with
 * the option on, a page that becomes empty is not retired or given back: it is *held* with
 * a QSBR goal of core's domain until every thread has passed it.
 *
 * The goal is made as CPython's `_Py_qsbr_deferred_advance` makes it: advancing the write
 * sequence is an atomic read-modify-write of one word every thread shares, so a thread
 * advances it (`Qsbr.advance()`) only for one hold in `QSBR_DEFERRED_LIMIT`, and for every
 * hold while its heap holds more than `HELD_LIMIT_BYTES` (the page included); the others take
 * the *deferred goal* (`Qsbr.deferredGoal()`: the write sequence plus one step, read without
 * writing), reached once anyone advances and every thread then passes a quiescent point.
 * The count is a plain field of the thread's own context (`MiContext.deferralsLeft`), never
 * shared. Unlike CPython, a thread's first hold after an advance is the one that advances
 * (so a thread that holds a page now and then always gives it a goal others can pass), and
 * a thread makes its own deferred goals reachable (one advance) when it collects, when it
 * abandons its heap, and before an allocation fails; its reaper does the same after a death.
 *
 * The descriptor has no free word, so a page's hold lives in a held-page record at
 * `ST_HELD_PAGES + (segmentIndex * MAX_SEGMENT_PAGES + pageIndex) * HELD_RECORD_BYTES`:
 *
 * ```text
 *  +0 HR_GOAL  int32 QSBR goal; 0 = not held (goals are odd, never 0)
 *  +4 HR_NEXT / +8 HR_PREV  links of the owner heap's held list (page descriptors)
 * ```
 *
 * Held-page invariants:
 * 5. A record is nonzero only for a held page, and pages are held only with the option on.
 *    A held page is in use, empty (`used = 0`, thread_free empty), not full, and its `free`
 *    is 0 (all its blocks on `local_free`), so the fast path never allocates from it: the
 *    slow path takes it (`findFreePage`), which cancels the hold (goal 0, unlinked). So a
 *    held page serves only its own size class and never leaves its heap's bin queue.
 * 6. An owned held page is in its owner's bin queue and on exactly one held list, its
 *    owner's (`HP_HELD_FIRST`/`HP_HELD_LAST`, doubly linked). An abandoned held page
 *    (`PG_OWNER = 0`) keeps its goal and is on no list (links 0); whoever reclaims its
 *    segment frees it if `poll` says its goal is reached, else queues it in its bin and
 *    links it on its own held list, goal unchanged. A page found empty at abandon or
 *    reclaim that was not held is held then with a fresh goal (it became empty then).
 * 7. A held page goes back to its segment (`pageFree`) only after `poll(goal)` is true, at
 *    the owner's slow path (which stops at the first goal not reached: the list is in
 *    goal order except for pages it adopted by reclaim, deferred goals included, since a
 *    deferred goal is the write sequence read at the hold plus one step and a later advance
 *    returns at least that; past `HELD_LIMIT_BYTES` held it looks at all) or collect (which
 *    looks at all). A deferred goal is at most one step ahead of the write sequence, and a
 *    thread has at most `QSBR_DEFERRED_LIMIT - 1` of them not yet made reachable by an
 *    advance (it advances at its next counted hold, collect, abandon or failing allocation). With the option on, the hold replaces
 *    the retire countdown (no page is retired). One exception: an allocation that would
 *    otherwise fail releases the held pages whose goal only its own thread has not passed
 *    (no other thread is online, so no other thread can be reading them), so a program of
 *    one thread that never calls `quiescent()` does not run out of memory.
 * 8. `HP_HELD_PAGES` and `HP_HELD_BYTES` count the owner's held list and its pages' block
 *    bytes. An abandoned held page is on no list and in no heap's count.
 *
 * Which thread holds a goal back is read from the sequences the threads published in the
 * domain (`Qsbr.sequenceOf`).
 *
 * ## A block
 *
 * ```text
 *  free block                     live block
 *  +0 next (encoded in secure)    user data from +0
 *  +4 FREED marker                (the marker word is cleared by malloc)
 * ```
 *
 * Double-free detection, in every mode: a block entering any free list (lazy extension,
 * local_free, thread_free, a heap's delayed list) gets `freedMarker(address)` in its second
 * word, and malloc clears that word. The marker mixes the address with the heap's random
 * cookie and is never 0, so a live block carries the marker of its own address only if its
 * data happens to match (one chance in 2^30 for random data). A free that finds the marker
 * therefore only refuses the address (`NotAllocated`) once the owner has found the block
 * on the page's lists or its heap's delayed list (`onFreeList` in `free.ts`), which costs
 * nothing on the common path. A free from another thread cannot walk the owner's lists
 * and trusts the marker: it refuses a live block whose data matches it. So the marker is
 * never a word that a `memset` writes (one byte repeated; `freedMarker`): data that is not
 * random would match it far more often (a remote free of a block filled with one byte was
 * refused in a few heaps in a hundred: docs/speed.md, "Larson and xmalloc-test"). Every
 * block is at least 8 bytes, so both words always fit.
 *
 * ## thread_free and the delayed-free states
 *
 * `PG_THREAD_FREE` holds `block | state`; blocks are 8-aligned so the low 3 bits are free.
 * Other threads push blocks with compare-and-swap; the owner takes the whole list with one
 * compare-and-swap (push-only plus take-all has no ABA problem). The state (mimalloc's
 * `mi_delayed_t`) tells a freeing thread whether to also tell the owner:
 * - `USE_DELAYED_FREE`: the page is in the owner's full queue, which the owner never scans;
 *   the first remote free goes to the owner heap's delayed list instead, so the owner finds
 *   the page again.
 * - `DELAYED_FREEING`: a freeing thread is between its two steps (it claimed the delayed
 *   free and is pushing the block onto the owner's delayed list); it sets
 *   `NO_DELAYED_FREE` when done and notifies the word.
 * - `NO_DELAYED_FREE`: push on thread_free only (the usual state).
 * - `NEVER_DELAYED_FREE`: the page is abandoned or being abandoned; never use the delayed list.
 * Only the owner moves a page into `USE_DELAYED_FREE` or `NEVER_DELAYED_FREE`; it never spins
 * on `DELAYED_FREEING` without bound (see `delayed.ts`). The transitions, and who makes them
 * (every one a compare-and-swap on the word that keeps the list bits):
 *
 * ```text
 *                  owner: page goes to the full queue (pageToFull)
 *   NO_DELAYED_FREE ---------------------------------------------> USE_DELAYED_FREE
 *        ^   ^      <---------------------------------------------    |
 *        |   |        owner: page leaves the full queue (pageUnfull),  | a remote free claims
 *        |   |        or a drain frees one of its blocks               | the delayed free
 *        |   |                                                         v (remoteFreeSteps)
 *        |   +------------------------------------------------ DELAYED_FREEING
 *        |     the claimer, once its block is on the owner's     (its claimer only, or
 *        |     delayed list (deliverDelayed); notifies the word    a resolver once it died:
 *        |                                                         back to USE_DELAYED_FREE
 *        |  reclaim: the adopting owner                            when no record names it)
 *        |  (override)
 *   NEVER_DELAYED_FREE  <---------  owner: abandon (from NO_ or USE_, after waiting out
 *                                   DELAYED_FREEING: setDelayedComplete)
 * ```
 *
 * ## A remote free in flight (`HP_RF_*`, `remote.ts`)
 *
 * A thread may die at any instruction of a remote free, and the block is then on no list or
 * on one, and the page may be left in `DELAYED_FREEING`, which only its claimer may leave.
 * So the freeing thread names what it is doing in its own heap record before each step,
 * and another thread can finish it (a *resolver*: the reaper, or an owner that must drain
 * completely) once the freer is dead. The step word is `block | code`. The first record of a
 * free names its first step (`RF_PUSHING` or `RF_CLAIMING`), and the block's freed marker is
 * written right after it, atomically, before the compare-and-swap that could put the block on
 * a list. Every record store is atomic but `RF_PUSHING`'s and the clearing after its CAS,
 * plain stores. A resolver reads the record only after the freer's death (which orders all
 * the freer's stores). The one live reader of that code is a rebuild of a dead owner's page:
 * it reads the marker atomically, and the atomic marker after the record publishes the
 * record to it; it may still see the record after the CAS, but so it could an atomic
 * clearing, which nothing orders before it either. The claim codes are read by live owners
 * (`claimantOf`), so their stores stay atomic:
 *
 * ```text
 *  code          the freer has                              a resolver
 *  RF_PUSHING    linked it to thread_free's head, read      finds whether the CAS happened
 *                PG_COLLECTS (marker maybe written); the    (below); if not, writes the
 *                CAS may have happened                      marker and frees afresh
 *  RF_CLAIMING   tried USE_DELAYED_FREE -> DELAYED_FREEING  writes the marker, frees
 *                (marker maybe written); no list holds it   afresh, then lifts a claim
 *                                                           that nobody holds
 *  RF_CLAIMED    the claim; no list holds the block         pushes it on the delayed list
 *  RF_DELAYING   the claim; linked the block to the         finds whether the CAS happened
 *                delayed list's head; the CAS may have too  (below); pushes it if not
 *  RF_DELAYED    the claim; the block is on the list        lifts the claim (NO_DELAYED_FREE)
 * ```
 *
 * Invariants:
 * 9. A block a remote free has begun is on no list unless the record's code is RF_PUSHING
 *    or RF_DELAYING (or the record is cleared): only those two steps end in the CAS that
 *    puts it on one, and a record is cleared only after that CAS. So the other codes are
 *    finished by doing the rest of the free, never twice.
 * 10. A page is in `DELAYED_FREEING` only while a record with RF_CLAIMING..RF_DELAYED names
 *    it (its claimer's). A page in `DELAYED_FREEING` that no record names lost its claimer
 *    after its claim CAS; whoever finds it (a complete drain) lifts it to `USE_DELAYED_FREE`,
 *    which at worst costs one more trip of a block through the delayed list.
 * 11. Whether the CAS of RF_PUSHING happened: a block once pushed leaves thread_free only
 *    by a take, which bumps `PG_COLLECTS` first; so the block on the list, or no take since
 *    the freer read `PG_COLLECTS` (`HP_RF_SEQ`, even, unchanged across the resolver's walk)
 *    and the block not on the list, decide it; anything else cannot be known, and the
 *    block's bytes are reported lost (`reportLoss`) rather than freed twice. For
 *    RF_DELAYING the claim is still held, so a pushed block cannot leave the delayed list
 *    but to be pushed back (a drain defers blocks of a claimed page): the list walked while
 *    `HP_DRAINS` is even and unchanged decides it.
 * 12. Only one resolver works on a record at a time (`HP_RF_RESOLVER`), and it writes the
 *    record's steps as the freer would, so a resolver that dies is resolved in its turn.
 *
 * ## The remote-free buffer (`HP_RB_*`, `remote.ts`)
 *
 * A remote free costs a compare-and-swap on a word the page's owner also writes, so the
 * freeing thread gathers its remote frees into one page in a buffer of its own heap record
 * (snmalloc's idea) and pushes them as one chain with one compare-and-swap: when a free goes
 * to another page, when the buffer is full (`HP_RB_LIMIT` blocks, at most `RB_CAPACITY` and
 * `RB_MAX_BYTES`), and when the thread detaches or collects. A buffered block is free to the
 * user: its marker is written (atomically, after the entry and the count, so whoever sees
 * the marker sees the block in the buffer), a second free of it is refused, and `check()`,
 * `walk()` and usedBytes count it as pending, as a block on thread_free. Secure mode does not
 * buffer (each link is encoded as it is pushed).
 *
 * ```text
 *  HP_RB_PAGE   page P            entry 0 <- entry 1 <- ... <- entry COUNT-1
 *  HP_RB_COUNT  COUNT             (each block's first word links to the entry before it;
 *  HP_RB_BLOCKS entries           entry 0's is written by the flush: thread_free's head)
 * ```
 *
 * The flush is a remote free of the chain: the record names its head (the last entry) with
 * the codes above, the steps push the chain where they would push one block (thread_free,
 * or the owner's delayed list after a claim), and the buffer is emptied after the
 * compare-and-swap that put the chain on a list and before the record is cleared.
 *
 * Invariants:
 * 13. The blocks of a buffer are extended blocks of page P, distinct, on no list, counted in
 *    P's `used`, unless a record names P and the buffer's last entry: the record's steps
 *    then cover the whole chain (a resolver finishes the record, then empties the buffer).
 * 14. A dead thread's buffer is flushed by its resolver, after its record: each marker
 *    written again, the links rebuilt from the entries, the chain pushed.
 */

// This module imports nothing, on purpose: the bundler inlines the constants of a module
// without imports into every use, so a field offset costs nothing at run time. (With an
// import, each would be a module-variable load on every access of the hot paths.)

/** The backend's name: the descriptor's, and the prefix of every error it raises. */
export const BACKEND_NAME = 'mimalloc';

// --- geometry -----------------------------------------------------------------------------

/** Bytes of a segment: 4 MiB, core's `HEAP_ALIGN` (a test checks they agree). */
export const SEGMENT_BYTES = 4 * 1024 * 1024;
/** Alignment of every block: core's `MIN_ALIGN` (a test checks they agree). */
export const BLOCK_ALIGN = 8;
/** log2 of `SEGMENT_BYTES`: `address >>> SEGMENT_SHIFT` numbers a segment. */
export const SEGMENT_SHIFT = 22;
/** `address & SEGMENT_MASK` is the offset of an address in its segment. */
export const SEGMENT_MASK = SEGMENT_BYTES - 1;
/** Small pages: 64 KiB, 64 per segment. */
export const SMALL_PAGE_SHIFT = 16;
/** Medium pages: 512 KiB, 8 per segment. */
export const MEDIUM_PAGE_SHIFT = 19;
/** A large page is the whole segment. */
export const LARGE_PAGE_SHIFT = SEGMENT_SHIFT;

// --- control state --------------------------------------------------------------------------

/**
 * 'MIM4' little-endian. Each older layout is refused rather than misread: 'MIM1' kept its
 * own table of pool ranges at 4752 (core's pool table now); 'MIM2' had a 1280-byte thread
 * heap record, before the per-bin counters of `stats=true` grew it; 'MIM3' a 2112-byte one,
 * before the remote-free buffer.
 */
export const STATE_MAGIC = 0x344d494d;
export const ST_MAGIC = 0;
export const ST_FLAGS = 4;
export const ST_ABANDONED = 8;
export const ST_ABANDONED_COUNT = 12;
export const ST_PEAK_USED = 16;
export const ST_SEGMENTS_TOTAL = 20;
export const ST_POOL = 64;
/** Room for the bitmap state of up to 1024 segments (288 bytes). */
export const ST_POOL_BYTES = 448;
export const ST_SEGMENT_MAP = 512;
/** One map word per 4 MiB of the 4 GiB address space. */
export const SEGMENT_MAP_ENTRIES = 1024;
export const ST_EMPTY_PAGE = ST_SEGMENT_MAP + SEGMENT_MAP_ENTRIES * 4;
export const ST_INTENT = ST_EMPTY_PAGE + 128;
export const IN_OP = 0;
export const IN_SEGMENT = 4;
export const IN_SPAN = 8;
export const IN_HEAP = 12;
/** Operations of the intent record. */
export const INTENT_ALLOC = 1;
export const INTENT_RELEASE = 2;
export const INTENT_CACHE = 3;
export const INTENT_ABANDON = 4;
export const INTENT_RECLAIM = 5;
export const INTENT_ADD_MEMORY = 6;
/** Heap records start on a cache line (`HEAP_BYTES` is a multiple of 64, so each does). */
export const ST_HEAPS = 4800;
/** `ST_FLAGS` bit: the heap was formatted in secure mode. */
export const FLAG_SECURE = 1;

/** Heap records reserved: one per possible thread id. */
export const MAX_HEAPS = 256;

// --- segment map values -------------------------------------------------------------------

export const SEGMENT_SMALL = 1;
export const SEGMENT_MEDIUM = 2;
export const SEGMENT_LARGE = 3;
export const SEGMENT_HUGE = 4;
export const SEGMENT_HUGE_TAIL = 5;
/** Map kinds at or below this have page descriptors. */
export const SEGMENT_PAGED_MAX = SEGMENT_LARGE;
/** The page shift sits above the kind in a map word. */
export const MAP_SHIFT_BITS = 8;
export const MAP_KIND_MASK = 0xff;

// --- segment header -----------------------------------------------------------------------

export const SG_MAGIC = 0;
export const SG_KIND = 4;
export const SG_PAGE_SHIFT = 8;
export const SG_PAGE_COUNT = 12;
export const SG_USED_PAGES = 16;
export const SG_OWNER = 20;
export const SG_NEXT = 24;
export const SG_PREV = 28;
export const SG_SPAN = 32;
export const SG_HUGE_BLOCK = 36;
export const SG_HUGE_SIZE = 40;
export const SG_PAGES = 64;
export const PAGE_DESCRIPTOR_BYTES = 128;
/** log2 of `PAGE_DESCRIPTOR_BYTES`. */
export const PAGE_DESCRIPTOR_SHIFT = 7;
/** The most pages a segment has (small pages). */
export const MAX_SEGMENT_PAGES = 64;
/** Bytes of segment header: fields and 64 page descriptors. */
export const SEGMENT_HEADER_BYTES = SG_PAGES + MAX_SEGMENT_PAGES * PAGE_DESCRIPTOR_BYTES;

// --- page descriptor ------------------------------------------------------------------------

export const PG_FLAGS = 0;
export const PG_BLOCK_SIZE = 4;
export const PG_START = 8;
export const PG_CAPACITY = 12;
export const PG_EXTENT = 16;
export const PG_FREE = 20;
export const PG_LOCAL_FREE = 24;
export const PG_THREAD_FREE = 28;
export const PG_USED = 32;
export const PG_OWNER = 36;
export const PG_NEXT = 40;
export const PG_PREV = 44;
export const PG_BIN = 48;
export const PG_GRID_INVERSE = 52;
export const PG_GRID_SHIFT = 56;
export const PG_GRID_LIMIT = 60;
export const PG_KEY0 = 64;
export const PG_KEY1 = 68;
export const PG_RETIRE = 72;
export const PG_COLLECTS = 76;
export const PG_RESERVED = 80;

export const PAGE_IN_USE = 1;
export const PAGE_IN_FULL = 2;
/**
 * Set (by the slow path, which serves every aligned request) once the page served an aligned
 * request whose size alone maps to a smaller class (`alignedAlloc(64, 100)` takes a block of
 * the 128-byte class): `blockLayout` then accepts those sizes for the page's blocks.
 */
export const PAGE_ALIGNED = 4;

// --- held-page record -----------------------------------------------------------------------

/**
 * Held bytes of a heap past which its slow path polls every held page, not only the oldest,
 * and every new hold advances the write sequence (CPython's `QSBR_FREE_MEM_LIMIT`).
 */
export const HELD_LIMIT_BYTES = 1024 * 1024;
/**
 * Holds a thread makes per advance of the write sequence while its heap holds less than
 * `HELD_LIMIT_BYTES` (CPython's `QSBR_DEFERRED_LIMIT`): one advances, the next ones take the
 * deferred goal.
 */
export const QSBR_DEFERRED_LIMIT = 10;
export const HR_GOAL = 0;
export const HR_NEXT = 4;
export const HR_PREV = 8;
export const HELD_RECORD_BYTES = 12;

// --- thread_free word ------------------------------------------------------------------------

/** The delayed-free state in the low bits of `PG_THREAD_FREE`. */
export const DELAYED_MASK = 3;
export const USE_DELAYED_FREE = 0;
export const DELAYED_FREEING = 1;
export const NO_DELAYED_FREE = 2;
export const NEVER_DELAYED_FREE = 3;

// --- remote free in flight ------------------------------------------------------------------

/**
 * Codes of `HP_RF_STEP` (its low 3 bits; the block is 8-aligned). Code 1 is unused: it was a
 * record of its own for a begun free, before the first step's record took its place.
 */
export const RF_CODE_MASK = 7;
export const RF_PUSHING = 2;
export const RF_CLAIMING = 3;
export const RF_CLAIMED = 4;
export const RF_DELAYING = 5;
export const RF_DELAYED = 6;
/** `HP_RF_RESOLVER` keeps 23 bits of the resolver's generation above its 9-bit thread id. */
export const RESOLVER_ID_BITS = 9;
export const RESOLVER_GEN_MASK = 0x7fffff;

// --- block ------------------------------------------------------------------------------------

/** Byte offset in a free block of its link. */
export const BLOCK_NEXT = 0;
/** Byte offset in a free block of its freed marker. */
export const BLOCK_MARKER = 4;
/** The marker's word from the block's first (`(block >>> 2) + BLOCK_MARKER_WORD`). */
export const BLOCK_MARKER_WORD = BLOCK_MARKER >>> 2;

// --- heap record ----------------------------------------------------------------------------

/** Word sizes 0..128 have a direct table entry: requests up to 1 KiB. */
export const DIRECT_WSIZE_MAX = 128;
export const SMALL_DIRECT_MAX = DIRECT_WSIZE_MAX * 8;
export const HP_DIRECT = 0;
export const HP_QUEUES = 528;
export const HP_DELAYED_FREE = 1088;
export const HP_SMALL_SEGMENTS = 1092;
export const HP_MEDIUM_SEGMENTS = 1096;
export const HP_HEARTBEAT = 1100;
export const HP_RANDOM = 1104;
export const HP_GENERATION = 1108;
export const HP_RF_RESOLVER = 1112;
export const HP_ACTIVE = 1116;
export const HP_RF_STEP = 1120;
export const HP_RF_PAGE = 1124;
export const HP_RF_SEQ = 1128;
export const HP_RF_HEAP = 1132;
export const HP_HELD_FIRST = 1136;
export const HP_HELD_LAST = 1140;
export const HP_EVENTS = 1144;
export const HP_RETIRED_BINS = 1216;
/** Words of `HP_RETIRED_BINS`: one bit per bin queue (`BIN_QUEUES` is 70). */
export const RETIRED_BIN_WORDS = 3;
export const HP_SEGMENT_CACHE = 1228;
/** Tag of a cache word whose segment a holder of the segment lock is giving back. */
export const CACHE_RELEASING = 1;
export const HP_RETIRE_DUE = 1232;
export const HP_DELAYED_KEY0 = 1236;
export const HP_DELAYED_KEY1 = 1240;
export const HP_DRAINS = 1244;
export const HP_HELD_PAGES = 1248;
export const HP_HELD_BYTES = 1252;
export const HP_BIN_STATS = 1280;
/** Entries of `HP_BIN_STATS`: one per bin 1..68 (`BIN_MAX`, a test checks it), 0 for huge. */
export const BIN_STAT_ENTRIES = 69;
/** Byte offsets in one entry of `HP_BIN_STATS`. */
export const BS_ALLOCATED = 0;
export const BS_FREED = 4;
export const BS_PEAK = 8;
export const BIN_STAT_BYTES = 12;
export const HP_RB_PAGE = 1256;
export const HP_RB_COUNT = 1260;
export const HP_RB_LIMIT = 1264;
export const HP_RB_BLOCKS = 2112;
/**
 * Entries of `HP_RB_BLOCKS`: the most blocks a remote-free buffer holds. A push costs a
 * compare-and-swap on a line the page's owner also writes and a read of `PG_COLLECTS`, both
 * likely cache misses: the buffer spreads them over this many frees.
 */
export const RB_CAPACITY = 64;
/**
 * The most bytes of blocks a remote-free buffer holds: they are free to the user but not to
 * the page's owner until the buffer is flushed, so larger blocks are buffered fewer at a
 * time, and a block size above half of it not at all (`bufferLimit`).
 */
export const RB_MAX_BYTES = 64 * 1024;
/** Bytes of one heap record (a multiple of 64, so every record starts a cache line). */
export const HEAP_BYTES = HP_RB_BLOCKS + RB_CAPACITY * 4;
/** Bytes of one page queue: first and last. */
export const QUEUE_BYTES = 8;
export const QUEUE_FIRST = 0;
export const QUEUE_LAST = 4;

/** Slow-path events counted per heap (stats), index from `HP_EVENTS` in words. */
export const HeapEvent = {
  slowPath: 0,
  pagesFresh: 1,
  pagesFreed: 2,
  pagesRetired: 3,
  pagesFull: 4,
  pagesExtended: 5,
  segmentsAllocated: 6,
  segmentsFreed: 7,
  segmentsAbandoned: 8,
  segmentsReclaimed: 9,
  hugeAllocated: 10,
  hugeFreed: 11,
  threadFreeCollected: 12,
  delayedFreed: 13,
  delayedDeferred: 14,
  deferredCalls: 15,
  remoteFrees: 16,
  collects: 17,
} as const;
export const EVENT_COUNT = 18;

/** Held-page records of delayed page reuse: one per page slot of the 4 GiB address space. */
export const ST_HELD_PAGES = ST_HEAPS + MAX_HEAPS * HEAP_BYTES;
/** Bytes of control state the backend asks for. */
export const STATE_BYTES = ST_HELD_PAGES + SEGMENT_MAP_ENTRIES * MAX_SEGMENT_PAGES * HELD_RECORD_BYTES;

/** A segment's magic word: depends on its address and the heap cookie, never 0. */
export function segmentMagic(segment: number, cookie: number): number {
  return (Math.imul((segment >>> SEGMENT_SHIFT) ^ cookie, 0x2c1b3c6d) ^ 0x5e6d0001) >>> 0 || 1;
}
