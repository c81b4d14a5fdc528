/**
 * What `heaplab grade` needs to run the kit's suites on a backend it was handed as a module,
 * without importing vitest itself: the path of the suite file, and the environment variables
 * that tell that file which modules and backends to load. This module imports nothing, so
 * the command line can read it in a process where vitest is not installed.
 *
 * The suite file (grade-suite.ts) is an ordinary vitest test file; grade runs it through
 * vitest's Node API with that file as the only test.
 */

/** A JSON array of backend module specifiers (paths, `file:` URLs or package names). */
export const GRADE_MODULES_VARIABLE = 'HEAPLAB_GRADE_MODULES';
/** A JSON array of backend names to grade among the modules' backends (empty: all of them). */
export const GRADE_BACKENDS_VARIABLE = 'HEAPLAB_GRADE_BACKENDS';
/** The directory the module specifiers are resolved from (the grading command's working directory). */
export const GRADE_FROM_VARIABLE = 'HEAPLAB_GRADE_FROM';

/** The suite file: the TypeScript source when this kit runs from source, else the build. */
export function gradeSuiteFile(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return decodeURIComponent(new URL(fromSource ? './grade-suite.ts' : './grade-suite.js', import.meta.url).pathname);
}
