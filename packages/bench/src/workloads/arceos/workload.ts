/**
 * arceos: ArceOS's allocator test suite as its harness runs it (docs/workloads/arceos.md):
 * for each heaplab backend and each native C allocator, every test timed, checked, and on
 * heaplab followed by the heap's `check()` and ArceOS's memory check. One row per contender
 * and test; the table has a row per contender and a column per test.
 */

import { barChart } from '../../report/chart.js';
import { formatBytes, formatSeconds } from '../../report/format.js';
import { figureColumns, renderTable, wrapText } from '../../report/text-table.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import type { Workload } from '../../run/workload.js';
import { runNativeArceosTest } from './native.js';
import { ALL_DIVISOR, ARCEOS_HEAP_BYTES, ARCEOS_TESTS, type ArceosRow, runBackendSuite, testCount } from './suite.js';
import { arceosInspectRuns } from './inspect-runs.js';
import { runThreadsLoop, threadsRunState } from './threads-loop.js';

/** The thread test's loop; workers find it by the workload's name. */
export const arceosThreadsLoop: ThreadLoop = {
  workload: 'arceos',
  sharedInput: () => null,
  runState: threadsRunState,
  run: (allocator, memory, _input, limits, thread) => runThreadsLoop(allocator, memory, limits, thread),
};

/** The vec_2 tests also show their shuffled frees in a column of their own. */
const FREE_PHASE_TESTS = new Set(['vec2-64', 'vec2-520']);

function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)} %`;
}

export const arceosWorkload: Workload<ArceosRow, 'arceos'> = {
  name: 'arceos',
  resultKey: 'arceos',
  summary: "ArceOS's allocator tests (align, vec, vec_2, btree_map, vec_3, malloc_large, 10 threads): time, checks, extra memory",
  allNote: `each test at 1/${ALL_DIVISOR} of its count`,
  // The tests need aligned allocation, layout-checked frees and the heap's figures: heaplab
  // backends have them; the C port runs the same tests against the C allocators.
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'native',
  heapBytesFor: () => ARCEOS_HEAP_BYTES,
  stepsPerContender: () => ARCEOS_TESTS.length,
  threadLoop: arceosThreadsLoop,
  inspectRuns: arceosInspectRuns,

  async run(contenders, settings, progress) {
    const rows: ArceosRow[] = [];
    const repeat = Math.max(1, settings.repeat);
    for (const contender of contenders) {
      const step = (header: string): void => progress.step(`arceos  ${contender.label}  ${header}`);
      if (contender.kind === 'native') {
        for (const test of ARCEOS_TESTS) {
          step(test.header);
          rows.push(await runNativeArceosTest(contender, test, testCount(test, settings), repeat));
        }
      } else if (contender.kind === 'heaplab') {
        rows.push(...(await runBackendSuite(contender, settings, arceosThreadsLoop, (test) => step(test.header))));
      }
    }
    return rows;
  },

  /** Times (and vec_2's free phases) with the checks passed; then the memory check of each test. */
  section(rows, run) {
    const labels = [...new Set(rows.map((row) => row.label))];
    const rowOf = new Map(rows.map((row) => [`${row.label}\n${row.test}`, row]));
    const find = (label: string, test: string): ArceosRow | undefined => rowOf.get(`${label}\n${test}`);
    const timeHeaders = ['backend', ...ARCEOS_TESTS.flatMap((test) => (FREE_PHASE_TESTS.has(test.name) ? [test.header, 'free'] : [test.header])), 'checks'];
    const timeBody = labels.map((label) => {
      const own = rows.filter((row) => row.label === label);
      const cells = ARCEOS_TESTS.flatMap((test) => {
        const row = find(label, test.name);
        const time = row === undefined ? '-' : row.error !== undefined ? 'FAIL' : formatSeconds(row.seconds);
        if (!FREE_PHASE_TESTS.has(test.name)) return [time];
        return [time, row?.freeSeconds !== undefined && row.error === undefined ? formatSeconds(row.freeSeconds) : '-'];
      });
      const passed = own.reduce((sum, row) => sum + row.checksPassed, 0);
      const total = own.reduce((sum, row) => sum + row.checksTotal, 0);
      return [label, ...cells, `${passed}/${total}`];
    });
    const blocks = [renderTable(timeHeaders, timeBody, figureColumns(timeHeaders), { width: run.width })];
    const singleThread = ARCEOS_TESTS.filter((test) => test.run !== undefined);
    const measured = labels.filter((label) => singleThread.some((test) => find(label, test.name)?.memory != null));
    if (measured.length > 0) {
      const memoryHeaders = ['memory check', ...singleThread.map((test) => test.header)];
      const memoryBody = measured.map((label) => [
        label,
        ...singleThread.map((test) => {
          const memory = find(label, test.name)?.memory;
          return memory == null ? '-' : `${percent(memory.extraRate)} of ${formatBytes(memory.usedBytes)}`;
        }),
      ]);
      blocks.push(
        `${wrapText("ArceOS's memory check where each test takes it: extra memory rate (bytes taken beyond those asked for) of the bytes taken", run.width)}\n` +
          renderTable(memoryHeaders, memoryBody, figureColumns(memoryHeaders), { width: run.width }),
      );
    }
    const notes = rows.filter((row) => row.error !== undefined).map((row) => `note: ${row.label} ${row.test} failed: ${row.error}`);
    const scaled = ARCEOS_TESTS.filter((test) => rows.some((row) => row.test === test.name && row.count !== test.count));
    if (scaled.length > 0) {
      notes.push(
        `note: arceos ran reduced counts: ${scaled.map((test) => `${test.header} ${rows.find((row) => row.test === test.name)!.count} ${test.unit} (of ${test.count})`).join(', ')}`,
      );
    }
    const repeats = Math.max(1, ...rows.map((row) => row.runs.length));
    return {
      title: `arceos (ArceOS allocator tests on a ${formatBytes(ARCEOS_HEAP_BYTES)} heap: seconds per test, ${repeats === 1 ? 'one run' : `median of ${repeats} runs`})`,
      table: blocks.join('\n\n'),
      notes,
    };
  },

  charts(rows) {
    const timed = rows.filter((row) => row.error === undefined && row.seconds > 0);
    if (timed.length === 0) return [];
    const header = new Map(ARCEOS_TESTS.map((test) => [test.name, test.header]));
    const order = new Map(ARCEOS_TESTS.map((test, index) => [test.name, index]));
    const sorted = [...timed].sort((a, b) => (order.get(a.test) ?? 0) - (order.get(b.test) ?? 0));
    return [
      barChart({
        id: 'arceos',
        title: 'arceos: seconds per test',
        caption: "ArceOS's allocator tests, each timed on its own (median of the repeats). One group per test, one bar per backend. Lower is better.",
        data: sorted.map((row) => {
          const test = header.get(row.test) ?? row.test;
          return {
            group: test,
            series: row.label,
            value: row.seconds,
            label: formatSeconds(row.seconds),
            tip: `${row.label}, ${test}: ${formatSeconds(row.seconds)}`,
          };
        }),
        axisTitle: 'seconds',
        seriesTitle: 'backend',
      }),
    ];
  },
};
