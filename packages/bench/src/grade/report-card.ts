/**
 * `heaplab grade`'s report card: what passed, what failed with its first error, the replay
 * of the trace set with each trace's figures, and the performance index. A grade passes only
 * when every test passed and every trace replayed valid on every graded backend.
 */

import type { ReplayResults } from '../replay/replay-suite.js';
import { replayText } from '../replay/replay-table.js';
import { TEXT_WIDTH, wrapText } from '../report/text-table.js';
import type { SuiteTest } from './kit-suites.js';

/** What grade found, as `--json` writes it. */
export interface GradeResults {
  kind: 'heaplab-grade';
  /** The backends graded (the reference is not one unless it was named). */
  backends: string[];
  /** The kit's tests, or null when they were not run (`--no-suites`). */
  tests: SuiteTest[] | null;
  replay: ReplayResults;
  /** True when every test passed and every graded backend replayed every trace valid. */
  passed: boolean;
}

/** Whether `results` pass: no failed test, and no invalid trace on a graded backend. */
export function gradePassed(tests: readonly SuiteTest[] | null, replay: ReplayResults, graded: readonly string[]): boolean {
  const testsPassed = tests === null || tests.every((test) => test.passed);
  const tracesValid = replay.backends.filter((row) => graded.includes(row.backend)).every((row) => row.score.validTraces === row.score.traces);
  return testsPassed && tracesValid;
}

/** The lines of the tests' part: per suite, passed of run, then each failure with its first error. */
function testLines(tests: readonly SuiteTest[] | null): string[] {
  if (tests === null) return ['Suites: not run (--no-suites)'];
  const lines = ['Suites (the test kit: conformance and multi-worker)'];
  const suites = [...new Set(tests.map((test) => test.suite))];
  for (const suite of suites) {
    const of = tests.filter((test) => test.suite === suite);
    const passed = of.filter((test) => test.passed).length;
    lines.push(`  ${suite.padEnd(13)} ${String(passed).padStart(3)}/${of.length} passed`);
  }
  if (tests.length === 0) lines.push('  no test ran');
  for (const failed of tests.filter((test) => !test.passed)) {
    lines.push(`  FAILED ${failed.name}`, `         ${failed.error ?? ''}`);
  }
  return lines;
}

/** The report card as text, no line wider than `width` but a word that is. */
export function reportCard(results: GradeResults, width: number = TEXT_WIDTH): string {
  const lines = [
    `heaplab grade: ${results.backends.join(', ')}`,
    '',
    ...testLines(results.tests),
    '',
    'Replay of the trace set',
    replayText(results.replay, width),
    '',
  ];
  for (const backend of results.backends) {
    const row = results.replay.backends.find((candidate) => candidate.backend === backend);
    if (row === undefined) continue;
    lines.push(`Score of ${backend}: ${row.score.index.toFixed(1)}/100 (${row.score.validTraces}/${row.score.traces} traces valid)`);
  }
  lines.push(`Result: ${results.passed ? 'PASS' : 'FAIL'}`);
  return wrapText(lines.join('\n'), width);
}
