/**
 * The first half of `heaplab grade`: the test kit's conformance and multi-worker suites on
 * the backends of the modules being graded, run by vitest's Node API in this process with
 * the kit's suite file as the only test file (`@heaplab/test-kit/grade`). Neither the kit nor
 * vitest is a dependency of the bench: they are what a backend package installs to test
 * itself (the package `heaplab new-backend` writes has both), and grade says how to get them
 * when they are missing.
 */

import { dirname } from 'node:path';

import { AllocError } from '@heaplab/core';

/** One test of the suites, as grade reports it. */
export interface SuiteTest {
  /** The suite it belongs to: `conformance`, `multi-worker`, or `load` for the suite file itself. */
  suite: string;
  /** The test's full name, its describe blocks included. */
  name: string;
  passed: boolean;
  /** The first line of the first error, when it failed. */
  error: string | null;
}

/** Where the modules and the backends to grade come from. */
export interface KitSuitesRequest {
  /** Backend module specifiers, as given on the command line. */
  modules: readonly string[];
  /** The backends to grade (all of the modules' backends when empty). */
  backends: readonly string[];
  /** The directory the specifiers are resolved from. */
  from: string;
}

/** Vitest's reporter hooks grade listens to (the parts of vitest's TestCase and TestModule it reads). */
interface TestCaseView {
  fullName: string;
  result(): { state: string; errors?: readonly { message?: string }[] };
}
interface TestModuleView {
  moduleId: string;
  errors(): readonly { message?: string }[];
}

const MISSING =
  "grade runs the test kit's suites, which need @heaplab/test-kit and vitest installed where the backend is " +
  "(the package 'heaplab new-backend' writes has both): npm install --save-dev @heaplab/test-kit vitest fast-check";

function firstLine(message: string | undefined): string {
  return (message ?? 'failed without a message').split('\n')[0]!.slice(0, 400);
}

/** The suite a test belongs to, from its full name (`conformance: mine > ...`, `multi-worker: mine > ...`). */
function suiteOf(fullName: string): string {
  const match = /^(conformance|multi-worker)\b/.exec(fullName);
  return match?.[1] ?? 'other';
}

/**
 * Runs the kit's suites on the backends of `request` and returns every test's outcome; a
 * suite file that could not load (a module that fails to import, a backend that no module
 * exports) is one failed test named after the file.
 * @throws AllocError `InvalidParam` when the test kit or vitest cannot be found
 */
export async function runKitSuites(request: KitSuitesRequest): Promise<SuiteTest[]> {
  let grade: typeof import('@heaplab/test-kit/grade');
  let vitestNode: typeof import('vitest/node');
  try {
    grade = await import('@heaplab/test-kit/grade');
    vitestNode = await import('vitest/node');
  } catch (error) {
    throw new AllocError('InvalidParam', `${MISSING} (${firstLine((error as Error).message)})`);
  }
  const suiteFile = grade.gradeSuiteFile();
  const tests: SuiteTest[] = [];
  const reporter = {
    onTestCaseResult(testCase: TestCaseView): void {
      const result = testCase.result();
      const passed = result.state === 'passed';
      if (result.state === 'skipped') return;
      tests.push({ suite: suiteOf(testCase.fullName), name: testCase.fullName, passed, error: passed ? null : firstLine(result.errors?.[0]?.message) });
    },
    onTestRunEnd(modules: readonly TestModuleView[], unhandled: readonly { message?: string }[]): void {
      for (const module of modules) {
        for (const error of module.errors()) tests.push({ suite: 'load', name: 'loading the backend modules', passed: false, error: firstLine(error.message) });
      }
      for (const error of unhandled) tests.push({ suite: 'other', name: 'an error outside any test', passed: false, error: firstLine(error.message) });
    },
  };
  const variables = {
    [grade.GRADE_MODULES_VARIABLE]: JSON.stringify(request.modules),
    [grade.GRADE_BACKENDS_VARIABLE]: JSON.stringify(request.backends),
    [grade.GRADE_FROM_VARIABLE]: request.from,
  };
  const exitCode = process.exitCode;
  // From sources (heaplab's own tests), the suite file is TypeScript that imports the
  // workspace packages by their `heaplab-source` condition, as the repository's vitest config does.
  const fromSource = suiteFile.endsWith('.ts');
  const conditions = fromSource ? { resolve: { conditions: ['heaplab-source'] }, ssr: { resolve: { conditions: ['heaplab-source'] } } } : {};
  try {
    const vitest = await vitestNode.startVitest(
      'test',
      [],
      {
        root: dirname(suiteFile),
        include: [suiteFile],
        // The kit's file sits in node_modules when the kit is installed; vitest skips that by default.
        exclude: [],
        config: false,
        watch: false,
        reporters: [reporter],
        testTimeout: 120_000,
        hookTimeout: 120_000,
        // Vitest sets these in the test processes it starts; this process's environment is left alone.
        env: variables,
      },
      conditions,
    );
    await vitest?.close();
  } finally {
    // Vitest sets the exit status for failed tests; grade decides its own.
    process.exitCode = exitCode;
  }
  return tests;
}
