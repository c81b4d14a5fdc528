/**
 * Repair after a thread died holding the segment lock (`segments`): `Backend.recover`
 * for mimalloc. The lock guards the pool, the segment map, the ownership words of segment
 * headers, the abandoned list and the segment caches (see "What the segment lock's holder
 * leaves" in `layout.ts`). Nothing per block is under it, so the repair touches no page.
 *
 * It finishes or rolls back the one operation the intent record names, then rebuilds every
 * structure the lock guards from the segment map and the headers' magic and owner words:
 * the pool's bitmaps from core's pool table (the ranges of `init` and every `addMemory` that
 * returned) and the segments in use,
 * the abandoned list and its count from the segments whose owner is 0.
 */

import { AllocError, type BackendRepair, heapCorrupted, hex } from '@heaplab/core/backend';

import type { MiContext } from './context.js';
import {
  BACKEND_NAME,
  CACHE_RELEASING,
  HP_SEGMENT_CACHE,
  IN_HEAP,
  IN_OP,
  IN_SEGMENT,
  IN_SPAN,
  INTENT_ABANDON,
  INTENT_ADD_MEMORY,
  INTENT_ALLOC,
  INTENT_CACHE,
  INTENT_RECLAIM,
  INTENT_RELEASE,
  MAP_KIND_MASK,
  SEGMENT_BYTES,
  SEGMENT_HUGE,
  SEGMENT_HUGE_TAIL,
  SEGMENT_LARGE,
  SEGMENT_SHIFT,
  SEGMENT_SMALL,
  segmentMagic,
  SG_MAGIC,
  SG_NEXT,
  SG_OWNER,
  SG_PREV,
  SG_SPAN,
  ST_ABANDONED,
  ST_ABANDONED_COUNT,
  ST_MAGIC,
  STATE_MAGIC,
} from './layout.js';
import { releaseSteps } from './segment.js';

function corrupt(message: string): AllocError {
  return heapCorrupted(BACKEND_NAME, `cannot recover: ${message}`);
}

const OPERATION_NAMES = ['', 'a segment allocation', 'a segment release', 'a cached segment release', 'an abandon', 'a reclaim', 'addMemory'];

/**
 * Makes what the segment lock guards consistent after its holder died; the caller holds the
 * lock (taken over from the dead thread).
 * @throws AllocError `HeapCorrupted` when the control state, the ranges or a huge block's
 *   span are unreadable: nothing sound to rebuild from
 */
export function recoverSegmentLock(t: MiContext): BackendRepair {
  const u32 = t.u32;
  const notes: string[] = [];
  if (u32[(t.state + ST_MAGIC) >>> 2] !== STATE_MAGIC) throw corrupt(`the control state at ${hex(t.state)} is not formatted`);
  const op = u32[t.intent + (IN_OP >>> 2)]!;
  const segment = u32[t.intent + (IN_SEGMENT >>> 2)]!;
  const span = u32[t.intent + (IN_SPAN >>> 2)]!;
  const map = t.segmentMap;
  if (op !== 0) notes.push(`the dead thread was in ${OPERATION_NAMES[op] ?? `operation ${op}`}${segment === 0 ? '' : ` of segment ${hex(segment)}`}`);
  if (op === INTENT_ALLOC && segment !== 0) {
    // Nobody received it: back to unused (the pool bit goes with the rebuild below).
    if (validRun(t, segment, span)) releaseSteps(t, segment, span);
    notes.push('rolled the allocation back');
  } else if (op === INTENT_RELEASE && validRun(t, segment, span)) {
    releaseSteps(t, segment, span);
    notes.push('finished the release');
  } else if (op === INTENT_CACHE) {
    const word = (u32[t.intent + (IN_HEAP >>> 2)]! + HP_SEGMENT_CACHE) >>> 2;
    if (Atomics.load(u32, word) === segment + CACHE_RELEASING) {
      releaseSteps(t, segment, 1);
      Atomics.store(u32, word, 0);
      notes.push('finished giving the cached segment back');
    }
  } else if (op === INTENT_ADD_MEMORY) {
    // addMemory did not return, so core never recorded the range: the pool rebuilt from
    // core's table below leaves it out.
    notes.push('rolled addMemory back');
  } else if (op === INTENT_ABANDON || op === INTENT_RECLAIM) {
    notes.push('the abandoned list is rebuilt from the segment owners');
  }

  // The map: every run in use must have its magic (a release that died before its map
  // stores is finished), and huge tails must follow their head.
  let runs = 0;
  for (let index = t.mapIndexStart; index < t.mapIndexEnd; ) {
    const kind = u32[map + index]! & MAP_KIND_MASK;
    const at = index * SEGMENT_BYTES;
    if (kind === 0) {
      index++;
      continue;
    }
    if (kind === SEGMENT_HUGE_TAIL || u32[(at + SG_MAGIC) >>> 2] !== segmentMagic(at, t.cookie) || kind > SEGMENT_HUGE) {
      u32[map + index] = 0;
      notes.push(`cleared a map word of segment ${hex(at)} that no segment in use owns`);
      index++;
      continue;
    }
    const runSpan = kind === SEGMENT_HUGE ? u32[(at + SG_SPAN) >>> 2]! : 1;
    if (!validRun(t, at, runSpan)) throw corrupt(`huge segment ${hex(at)} spans ${runSpan} segments, out of the arena`);
    for (let i = 1; i < runSpan; i++) u32[map + index + i] = SEGMENT_HUGE_TAIL;
    runs++;
    index += runSpan;
  }

  // The pool, from core's pool table and the map. The table is read with an atomic count:
  // core records a range under its pools lock, not under this one.
  const rangeCount = t.pools.publishedCount();
  if (rangeCount < 1) throw corrupt('core records no pool range');
  const pool = t.pool;
  for (let i = 0; i < rangeCount; i++) {
    if (i === 0) pool.init(t.pools.start(i), t.pools.size(i));
    else pool.addMemory(t.pools.start(i), t.pools.size(i));
  }
  for (let index = t.mapIndexStart; index < t.mapIndexEnd; index++) {
    const kind = u32[map + index]! & MAP_KIND_MASK;
    if (kind === 0 || kind === SEGMENT_HUGE_TAIL) continue;
    const at = index * SEGMENT_BYTES;
    const runSpan = kind === SEGMENT_HUGE ? u32[(at + SG_SPAN) >>> 2]! : 1;
    try {
      pool.allocPagesAt(at, runSpan, SEGMENT_BYTES);
    } catch (error) {
      if (error instanceof AllocError) throw corrupt(`segment ${hex(at)} is in use but not in a recorded pool range (${error.message})`);
      throw error;
    }
  }

  // The abandoned list: exactly the paged segments in use with no owner, in address order.
  let head = 0;
  let abandoned = 0;
  for (let index = t.mapIndexEnd - 1; index >= t.mapIndexStart; index--) {
    const kind = u32[map + index]! & MAP_KIND_MASK;
    if (kind < SEGMENT_SMALL || kind > SEGMENT_LARGE) continue;
    const at = index * SEGMENT_BYTES;
    if (Atomics.load(u32, (at + SG_OWNER) >>> 2) !== 0) continue;
    u32[(at + SG_NEXT) >>> 2] = head;
    u32[(at + SG_PREV) >>> 2] = 0;
    head = at;
    abandoned++;
  }
  u32[(t.state + ST_ABANDONED) >>> 2] = head;
  Atomics.store(u32, (t.state + ST_ABANDONED_COUNT) >>> 2, abandoned);

  // Caches: no tag survives the lock's holder, and no cache names a segment not in use.
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const word = (t.heapOf(threadId) + HP_SEGMENT_CACHE) >>> 2;
    const cached = Atomics.load(u32, word);
    if (cached === 0) continue;
    const untagged = cached - (cached & CACHE_RELEASING);
    const inUse = (u32[map + (untagged >>> SEGMENT_SHIFT)]! & MAP_KIND_MASK) !== 0;
    if (cached !== untagged || !inUse) Atomics.store(u32, word, inUse ? untagged : 0);
  }
  u32[t.intent + (IN_OP >>> 2)] = 0;
  notes.push(`rebuilt the segment pool (${runs} runs in use) and the abandoned list (${abandoned} segments)`);
  return { lostBytes: 0, lostBlocks: 0, notes };
}

/** Whether `[segment, segment + span segments)` is a run of whole segments in the arena. */
function validRun(t: MiContext, segment: number, span: number): boolean {
  return segment % SEGMENT_BYTES === 0 && segment >= t.arenaStart && span >= 1 && segment + span * SEGMENT_BYTES <= t.arenaEnd;
}
