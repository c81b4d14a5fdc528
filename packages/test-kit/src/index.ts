/**
 * @heaplab/test-kit: the suites every backend package runs against itself, and the pieces
 * they are made of (a heap model, block signatures, a worker pool). It reaches core only
 * through `@heaplab/core`, `@heaplab/core/backend` and `@heaplab/core/internal`.
 *
 * ```ts
 * import { describeConformance, describeMultiWorker } from '@heaplab/test-kit';
 * import { tlsfBackend } from '../src/index.js';
 * describeConformance({ label: 'tlsf', backend: tlsfBackend });
 * describeMultiWorker({ label: 'tlsf', backend: tlsfBackend });
 * ```
 */

export { type BackendContextOptions, BackendFixture, makeBackendContext, recordPool } from './backend-context.js';
export {
  checkAndWalk,
  describeConformance,
  errorOf,
  expectAllocError,
  HeapModel,
  makeHeap,
  type SuiteTarget,
  targetDescriptor,
} from './conformance.js';
export { describeMultiWorker, type MultiWorkerOptions } from './multi-worker.js';
export { describeCacheDeaths } from './cache-deaths.js';
export { describeRefillRuns, expectRunHolds, type RunTarget, takeRun } from './refill-runs.js';
export { type CrashRecoveryTarget, describeCrashRecovery } from './crash-recovery.js';
export { dyingMemory, type StoreBudget, ThreadDeath } from './dying-memory.js';
export { type CorruptionKind, describeCorruptionDetection } from './corruption.js';
export { isMemsetWord, memsetMarkerAddresses, spellableMarkers, sweepMarkerSuspects } from './memset-words.js';
export { applyHeapStep, expectWalkAgrees, type HeapStep, heapStep, type WalkTotals, walkTotals } from './walk.js';
export {
  fillPattern,
  findPatternMismatch,
  patternByte,
  Random,
  readSignature,
  SIGNATURE_BYTES,
  signBlock,
  type Signature,
  verifyBlock,
} from './patterns.js';
export { type KitWorkerOptions, kitWorkerOptions, spawnKitWorker, WorkerPool, WorkerTaskError } from './worker-pool.js';
export { serveTasks, type TaskReply } from './task-protocol.js';
export type {
  ChurnResult,
  ChurnTask,
  CorruptionOutcome,
  CorruptionTrialTask,
  DieInBackendTask,
  ExitOnSignalTask,
  HoldLockTask,
  KitTask,
  LockStepDeathTask,
  CacheStepDeathTask,
  AllocateAndDetachTask,
  MutexTask,
  NestedLockTask,
  WalkOutcome,
  WalkTask,
} from './kit-worker.js';
