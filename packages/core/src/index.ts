/**
 * @heaplab/core: what a user of a heap needs: `GlobalAllocator`, the allocator interfaces,
 * layouts and errors, the shared heap, locks, the thread registry, the bitmap page allocator
 * and the basic backend. Two more entry points: `@heaplab/core/backend` (the contract and
 * kit for writing a backend) and `@heaplab/core/internal` (for heaplab's own packages). The
 * conformance test kit is its own package, `@heaplab/test-kit`.
 */

export { AllocError, type AllocErrorKind, describeValue, hex } from './errors.js';
export {
  alignDown,
  alignUp,
  checkAlign,
  checkArenaRange,
  checkSize,
  GiB,
  HEAP_ALIGN,
  isPowerOfTwo,
  KiB,
  type Layout,
  layout,
  MAX_ALIGN,
  MiB,
  MIN_ALIGN,
  PAGE_SIZE,
} from './sizes.js';
export type {
  BackendStats,
  BaseAllocator,
  ByteAllocator,
  CAllocator,
  CheckReport,
  HeapMemory,
  HeapRegion,
  HeapRegionKind,
  PageAllocator,
  StatsTable,
} from './interfaces.js';
/** The descriptor a user passes to `create`; the rest of the backend contract is `@heaplab/core/backend`. */
export type { AnyBackendDescriptor, BackendConcurrency, BackendDescriptor, BackendOptionSpec, HeapDemand } from './backend/contract.js';
export { minimumHeapBytes } from './backend/heap-demand.js';
export { layoutOfBlock } from './facade/locked-backend.js';
export type { RecoveryFigures, RecoveryReport } from './memory/recovery.js';
export {
  BACKEND_STATE_MAX_BYTES,
  CONTROL_BYTES,
  LockIndex,
  POISON_BYTE,
  MAX_THREADS_LIMIT,
} from './memory/heap-layout.js';
export {
  BACKEND_NAME_PATTERN,
  DEFAULT_HEAP_BYTES,
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_MAX_THREADS,
  MAX_HEAP_BYTES,
  MAX_LOCK_TIMEOUT_MS,
  type Pool,
  SharedHeap,
  viewsOf,
} from './memory/shared-heap.js';
export { type LockStep, SharedMutex } from './memory/mutex.js';
export { MAX_SPIN_MS, park, type ParkResult, THREAD_CAN_BLOCK } from './memory/park.js';
export { type SpawnWorkerOptions, spawnWorker } from '#platform/loaders';
export { PLATFORM_NAME, platformThreadId } from '#platform';
export { ISOLATION_HEADERS, requireSharedMemory, type SharedMemoryGlobals } from './platform/shared-memory.js';
export { Qsbr, sequenceReached } from './qsbr/qsbr.js';
export { CHUNK_BYTES, DEFAULT_HELD_LIMIT_BYTES, type DelayedFreeStats } from './qsbr/delayed-free.js';
export { ThreadRegistry } from './memory/thread-registry.js';
export { Random } from './random.js';
export { BitmapPageAllocator } from './pages/bitmap-page-allocator.js';
export { BASIC_STRATEGIES, BasicAllocator, type BasicOptions, basicBackend } from './basic/index.js';
export {
  type BackendSpec,
  findBackend,
  isBackendDescriptor,
  loadBackend,
  parseBackendSpec,
  registerBackend,
  registeredBackends,
  trustBackendModule,
} from './facade/backend-registry.js';
export { type BackendModuleOptions, loadBackendModule, loadedBackendModules } from '#platform/loaders';
export {
  type AttachOptions,
  CALL_PUBLISH_INTERVAL,
  GlobalAllocator,
  type HeapConfig,
  type HeapStats,
  type LockFigures,
  type ReapReport,
} from './facade/global-allocator.js';
export type { ThreadCache, ThreadCacheFigures, ThreadCacheStep } from './tcache/thread-cache.js';
export {
  checkTrace,
  fitsTextSpelling,
  formatTrace,
  MAX_TRACE_BYTES,
  MAX_TRACE_IDS,
  MAX_TRACE_THREADS,
  parseTrace,
  type Trace,
  type TraceFigures,
  traceFigures,
  type TraceRequest,
  type TraceSpelling,
  traceSpellingOf,
} from './trace/trace-format.js';
export {
  DEFAULT_TRACE_CAPACITY,
  MAX_TRACE_CAPACITY,
  type RecordableHeap,
  TraceRecorder,
  type TraceRecorderOptions,
  type TraceScan,
} from './trace/trace-recorder.js';
