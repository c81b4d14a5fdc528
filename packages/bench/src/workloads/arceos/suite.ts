/**
 * The ArceOS allocator test suite as one list (docs/workloads/arceos.md): the tests in the
 * order the ArceOS harness runs them, their counts, and the runner that times each test
 * `repeat` times on a heaplab backend, checks the heap after each run, and makes the rows.
 */

import type { GlobalAllocator } from '@heaplab/core';

import type { BackendContender } from '../../contenders/contender.js';
import { createBackendHeap } from '../../contenders/backends.js';
import { type LoopMemory, loopMemory } from '../../run/address-allocator.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { runThreaded } from '../../run/threaded-run.js';
import type { BenchSettings, WorkloadRow } from '../../run/workload.js';
import {
  alignTest,
  btreeTest,
  type MemoryCheck,
  mallocLargeTest,
  type SingleThreadTest,
  type SuiteHeap,
  TestClock,
  vec2Test,
  vec3Test,
  vecTest,
} from './single-thread-tests.js';
import { ARCEOS_ROUNDS, ARCEOS_THREADS, BLOCKS_PER_THREAD, remoteFreesOf, threadsRunState } from './threads-loop.js';

/** The tests, by the names rows and the C port use. */
export type ArceosTestName = 'align' | 'vec' | 'vec2-64' | 'vec2-520' | 'btree' | 'vec3' | 'malloc-large' | 'threads';

/** One test of the suite. */
export interface ArceosTest {
  name: ArceosTestName;
  /** Its column in the table: the original's function, shortened. */
  header: string;
  /** The original's count (its main loop's length). */
  count: number;
  /** What the count counts. */
  unit: string;
  /** The single-thread test; absent for the thread test, which runs on workers. */
  run?: SingleThreadTest;
}

/** The suite, in the harness's order: `align_test`, `basic_test`'s five, malloc-large, the thread test. */
export const ARCEOS_TESTS: readonly ArceosTest[] = [
  { name: 'align', header: 'align', count: 50_000, unit: 'steps', run: alignTest },
  { name: 'vec', header: 'vec', count: 3_000_000, unit: 'pushes', run: vecTest },
  { name: 'vec2-64', header: 'vec_2 64', count: 30_000, unit: 'blocks of 512 B', run: vec2Test(64) },
  { name: 'vec2-520', header: 'vec_2 520', count: 7_500, unit: 'blocks of 4160 B', run: vec2Test(520) },
  { name: 'btree', header: 'btree_map', count: 50_000, unit: 'steps', run: btreeTest },
  { name: 'vec3', header: 'vec_3', count: 10_000, unit: 'n (5n blocks of 256 or 512 B)', run: vec3Test },
  { name: 'malloc-large', header: 'malloc_large', count: 100_000, unit: 'iterations', run: mallocLargeTest },
  { name: 'threads', header: `${ARCEOS_THREADS} threads`, count: ARCEOS_ROUNDS, unit: `rounds of ${ARCEOS_THREADS} threads` },
];

/** `bench all` runs each test at a tenth of its count. */
export const ALL_DIVISOR = 10;
/** The warm-up before a backend's timed runs: each single-thread test at a tenth of its count again. */
const WARMUP_DIVISOR = 10;

/**
 * The heap of every run: the 128 MiB pool of ArceOS's allocator tests. The largest moment is
 * malloc-large's ten buffers of up to 5 MiB, or test_vec's 16 MiB buffer while `realloc`
 * moves it.
 */
export const ARCEOS_HEAP_BYTES = 256 << 20;

/** Checks of each heaplab test: the test's own, the heap's `check()`, and the heap back to empty. */
export const HEAPLAB_CHECKS = 3;

/** One row: one contender, one test. */
export interface ArceosRow extends WorkloadRow {
  test: ArceosTestName;
  /** The test's count as run (see `ArceosTest.count`). */
  count: number;
  /** Seconds of the median run. */
  seconds: number;
  secondsMin: number;
  secondsMax: number;
  /** Every run's seconds, in the order they ran. */
  runs: number[];
  /** vec_2: the median run's frees in shuffled order (part of `seconds`). */
  freeSeconds?: number;
  /** Checks passed in the last run (all runs, when the row has no error). */
  checksPassed: number;
  checksTotal: number;
  /** The median run's ArceOS memory check; null where there is none (the thread test, native rows). */
  memory: MemoryCheck | null;
  /** The thread test: frees of blocks another thread allocated, in the median run. */
  remoteFrees?: number;
}

/** The count `test` runs with under `settings`. */
export function testCount(test: ArceosTest, settings: Pick<BenchSettings, 'inAll' | 'maxIterations'>): number {
  let count = settings.inAll ? Math.max(1, Math.round(test.count / ALL_DIVISOR)) : test.count;
  const bound = settings.maxIterations;
  if (bound !== undefined && Number.isFinite(bound)) {
    // Tests bound every loop by maxIterations; the thread test's unit is a round of 1000 blocks per thread.
    count = Math.min(count, test.run === undefined ? Math.max(1, Math.floor(bound / BLOCKS_PER_THREAD)) : bound);
  }
  return count;
}

/** One run of one test. */
export interface TestRun {
  seconds: number;
  freeSeconds?: number;
  remoteFrees?: number;
  memory: MemoryCheck | null;
  checksPassed: number;
}

/** A test that failed, with the checks it passed before. */
export class TestFailure extends Error {
  constructor(
    message: string,
    readonly checksPassed: number,
  ) {
    super(message);
  }
}

/**
 * Runs a single-thread test once on `heap`, then checks the heap and that the test left it
 * as it found it.
 * @throws TestFailure when the test, the check or the emptiness fails
 */
export function runSingleTest(heap: SuiteHeap & { check(): { liveBlocks: number } }, memory: LoopMemory, test: SingleThreadTest, count: number): TestRun {
  let checksPassed = 0;
  try {
    const usedBefore = heap.stats().usedBytes;
    const clock = new TestClock();
    const findings = test(heap, memory, count, clock);
    const seconds = clock.seconds();
    checksPassed += findings.checks;
    const report = heap.check();
    checksPassed++;
    const usedAfter = heap.stats().usedBytes;
    if (report.liveBlocks !== 0 || usedAfter !== usedBefore) {
      throw new Error(`the test left ${report.liveBlocks} live blocks and ${usedAfter - usedBefore} used bytes behind`);
    }
    checksPassed++;
    return { seconds, memory: findings.memory, checksPassed, ...(findings.freeSeconds !== undefined ? { freeSeconds: findings.freeSeconds } : {}) };
  } catch (error) {
    throw new TestFailure(error instanceof Error ? error.message : String(error), checksPassed);
  }
}

/** The row of `runs` (at least one): the median run's figures, with the spread. */
export function medianTestRow(
  base: Omit<ArceosRow, 'seconds' | 'secondsMin' | 'secondsMax' | 'runs' | 'checksPassed' | 'memory'>,
  runs: readonly TestRun[],
): ArceosRow {
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return {
    ...base,
    seconds: median.seconds,
    secondsMin: sorted[0]!.seconds,
    secondsMax: sorted[sorted.length - 1]!.seconds,
    runs: runs.map((run) => run.seconds),
    ...(median.freeSeconds !== undefined ? { freeSeconds: median.freeSeconds } : {}),
    ...(median.remoteFrees !== undefined ? { remoteFrees: median.remoteFrees } : {}),
    checksPassed: median.checksPassed,
    memory: median.memory,
  };
}

/** The row of a test that failed. */
export function failedTestRow(base: Omit<ArceosRow, 'seconds' | 'secondsMin' | 'secondsMax' | 'runs' | 'checksPassed' | 'memory'>, error: unknown): ArceosRow {
  return {
    ...base,
    seconds: 0,
    secondsMin: 0,
    secondsMax: 0,
    runs: [],
    checksPassed: error instanceof TestFailure ? error.checksPassed : 0,
    memory: null,
    error: error instanceof Error ? error.message : String(error),
  };
}

/**
 * The heap the single-thread tests share, made (and pre-faulted, so page faults are not
 * timed) when a test first needs it, and dropped after a failure: a failed test leaves the
 * heap in an unknown state, so the next test gets a fresh one.
 */
class SharedSuiteHeap {
  private heap: GlobalAllocator | null = null;
  private views: LoopMemory | null = null;

  constructor(private readonly contender: BackendContender) {}

  /** @throws AllocError when the heap cannot be made */
  get(): { heap: GlobalAllocator; memory: LoopMemory } {
    if (this.heap === null || this.views === null) {
      const heap = createBackendHeap(this.contender.spec, ARCEOS_HEAP_BYTES);
      heap.prefault();
      this.heap = heap;
      this.views = loopMemory(heap.buffer);
    }
    return { heap: this.heap, memory: this.views };
  }

  drop(): void {
    this.heap?.detach();
    this.heap = null;
    this.views = null;
  }
}

/**
 * Runs every test on `contender`, one row per test. The single-thread tests share one heap,
 * as the harness runs them one after the other on one allocator. `step` is called before
 * each test.
 */
export async function runBackendSuite(
  contender: BackendContender,
  settings: BenchSettings,
  threadsLoop: ThreadLoop,
  step: (test: ArceosTest) => void,
): Promise<ArceosRow[]> {
  const rows: ArceosRow[] = [];
  const repeat = Math.max(1, settings.repeat);
  const shared = new SharedSuiteHeap(contender);
  try {
    if (settings.warmup) {
      for (const test of ARCEOS_TESTS) {
        if (test.run === undefined) continue;
        try {
          const { heap, memory } = shared.get();
          runSingleTest(heap, memory, test.run, Math.max(1, Math.floor(testCount(test, settings) / WARMUP_DIVISOR)));
        } catch {
          // The timed runs meet the same failure and report it.
          shared.drop();
        }
      }
    }
    for (const test of ARCEOS_TESTS) {
      step(test);
      const count = testCount(test, settings);
      const base = { label: contender.label, kind: contender.kind, test: test.name, count, checksTotal: HEAPLAB_CHECKS };
      if (test.run === undefined) {
        // The thread test makes a heap of its own; the shared one need not stay alive beside it.
        shared.drop();
        rows.push(await runThreadsTest(contender, threadsLoop, count, repeat, base));
        continue;
      }
      try {
        const { heap, memory } = shared.get();
        const runs: TestRun[] = [];
        for (let index = 0; index < repeat; index++) runs.push(runSingleTest(heap, memory, test.run, count));
        rows.push(medianTestRow(base, runs));
      } catch (error) {
        rows.push(failedTestRow(base, error));
        shared.drop();
      }
    }
  } finally {
    shared.drop();
  }
  return rows;
}

/**
 * The thread test: `repeat` runs of `rounds` rounds on `ARCEOS_THREADS` workers sharing a
 * fresh heap. A run's time is its slowest thread's, from the barrier all threads pass once
 * attached: worker start-up is not the allocator's.
 */
async function runThreadsTest(
  contender: BackendContender,
  loop: ThreadLoop,
  rounds: number,
  repeat: number,
  base: Omit<ArceosRow, 'seconds' | 'secondsMin' | 'secondsMax' | 'runs' | 'checksPassed' | 'memory'>,
): Promise<ArceosRow> {
  const runs: TestRun[] = [];
  let checksPassed = 0;
  // The run's shared buffer is made here, in the main thread, so its remote-free count can be read afterwards.
  let runState: SharedArrayBuffer | null = null;
  const counted: ThreadLoop = { ...loop, runState: (threads) => (runState = threadsRunState(threads)) };
  try {
    for (let index = 0; index < repeat; index++) {
      checksPassed = 0;
      const run = await runThreaded({
        contender,
        loop: counted,
        threads: ARCEOS_THREADS,
        durationSeconds: Infinity,
        maxIterations: rounds,
        verify: true,
        heapBytes: ARCEOS_HEAP_BYTES,
      });
      const remoteFrees = remoteFreesOf(runState!);
      if (run.iterations !== rounds * ARCEOS_THREADS) throw new Error(`${run.iterations} thread rounds ran, not ${rounds * ARCEOS_THREADS}`);
      if (remoteFrees === 0) throw new Error('no thread freed a block another thread allocated');
      checksPassed++;
      // runThreaded has checked the heap (a corrupted heap throws there).
      const check = run.check!;
      checksPassed++;
      if (check.liveBlocks !== 0 || check.usedBytes !== 0)
        throw new Error(`${check.liveBlocks} blocks (${check.usedBytes} bytes) still live after every round`);
      checksPassed++;
      runs.push({ seconds: Math.max(...run.threadSeconds), remoteFrees, memory: null, checksPassed });
    }
    return { ...medianTestRow(base, runs), threads: ARCEOS_THREADS };
  } catch (error) {
    return { ...failedTestRow(base, new TestFailure(error instanceof Error ? error.message : String(error), checksPassed)), threads: ARCEOS_THREADS };
  }
}
