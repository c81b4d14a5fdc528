/**
 * `@heaplab/core/internal`: for heaplab's own packages (test-kit, bench), no stability
 * promise. What `@heaplab/test-kit` needs to build a backend's context over a bare buffer
 * as a heap would (`makeBackendContext`) and that neither `@heaplab/core` nor
 * `@heaplab/core/backend` offers, because a user of a heap or a backend implementer has no
 * business with it: raw offsets of the control region, the lock-order checker, the recovery
 * record, the pool table's writer, the QSBR formatter and the thread cache's owner table and records.
 *
 * Anything here may change or go in any release; code outside heaplab uses the two public
 * entry points.
 */

export {
  BACKEND_STATE,
  LOCK_NAMES,
  LOCK_RANK,
  LOCK_RECORD_BYTES,
  LOCK_TABLE,
  OWNER_INDEX_MASK,
  OWNER_TABLE,
  TC_BIN_LIMIT,
  TC_BLOCK_NEXT,
  TC_BYTES,
  TC_CLASSES,
  TC_COUNTS,
  TC_HEADS,
  TC_MAX_REQUEST,
  SLOT_GENERATION_SHIFT,
  SLOT_STATE,
  SlotState,
} from './memory/heap-layout.js';
export { LockOrder } from './memory/lock-order.js';
export { RecoveryRecord } from './memory/recovery.js';
export { slotOffset } from './memory/thread-registry.js';
export { PoolTable } from './backend/pools.js';
export { formatQsbr } from './qsbr/qsbr.js';
export { cacheRecordOffset, forgetCacheOwner, ownerSlot } from './tcache/thread-cache.js';
