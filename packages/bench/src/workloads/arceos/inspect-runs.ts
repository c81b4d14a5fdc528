/**
 * What `heaplab map` and `heaplab stats` run of the ArceOS suite (docs/heap-maps.md): the
 * single-thread tests, all of them in the harness's order or one by its original function's
 * name (`arceos:vec_2`), each on one heap after the other as the harness runs them, and with
 * `leaveLive`. `random-free` is the name the issue asking for heap maps used for test_vec_2,
 * which random-free was folded into.
 */

import { loopMemory } from '../../run/address-allocator.js';
import type { InspectRun } from '../../run/workload.js';
import { TestClock } from './single-thread-tests.js';
import { ARCEOS_HEAP_BYTES, ARCEOS_TESTS, type ArceosTestName } from './suite.js';

/** The tests `names`, one after another on one heap; `iterations` bounds each test's count. */
function testsRun(name: string, summary: string, names: readonly ArceosTestName[]): InspectRun {
  const tests = names.map((test) => ARCEOS_TESTS.find((candidate) => candidate.name === test)!);
  return {
    name,
    summary,
    heapBytes: ARCEOS_HEAP_BYTES,
    run(heap, iterations) {
      const memory = loopMemory(heap.buffer);
      for (const test of tests) test.run!(heap, memory, Math.min(test.count, iterations ?? Infinity), new TestClock(), true);
    },
  };
}

const VEC_2: readonly ArceosTestName[] = ['vec2-64', 'vec2-520'];

/** Each run, by the original's function name (and the bench's row names for vec_2's halves). */
export const arceosInspectRuns: readonly InspectRun[] = [
  testsRun(
    'arceos',
    "every single-thread test in the harness's order (the thread test needs its ten threads)",
    ARCEOS_TESTS.filter((test) => test.run !== undefined).map((test) => test.name),
  ),
  testsRun('arceos:align', 'align_test', ['align']),
  testsRun('arceos:vec', 'test_vec', ['vec']),
  testsRun('arceos:vec_2', 'test_vec_2(30000, 64) then test_vec_2(7500, 520)', VEC_2),
  testsRun('arceos:vec2-64', 'test_vec_2(30000, 64)', ['vec2-64']),
  testsRun('arceos:vec2-520', 'test_vec_2(7500, 520)', ['vec2-520']),
  testsRun('arceos:btree_map', 'test_btree_map', ['btree']),
  testsRun('arceos:vec_3', 'test_vec_3', ['vec3']),
  testsRun('arceos:malloc_large', 'malloc_large_test', ['malloc-large']),
  testsRun('random-free', 'arceos:vec_2, which random-free was folded into', VEC_2),
];
