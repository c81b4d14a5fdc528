import { defineConfig } from 'vitest/config';

// Tests run against each package's src/: the "heaplab-source" export condition points workspace
// packages at their TypeScript, so no build is needed before testing.
//
// Two projects: every test as it is, and every backend's conformance and multi-worker suites
// again in checked mode (HEAPLAB_CHECKED=1: each operation verifies the invariants it touches,
// and every lock acquisition asserts the lock order of docs/lock-order.md).
const CHECKED_SUITES = ['packages/*/test/**/*conformance.test.ts', 'packages/*/test/**/*multi-worker.test.ts'];

export default defineConfig({
  resolve: { conditions: ['heaplab-source'] },
  ssr: { resolve: { conditions: ['heaplab-source'] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Vitest's default is one file at a time on a 2-core machine (CPUs - 1); most files spend
    // their time in worker threads waiting on each other, so two at a time keeps the suite
    // under 10 minutes there.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'default', include: ['packages/*/test/**/*.test.ts'] } },
      { extends: true, test: { name: 'checked', include: CHECKED_SUITES, env: { HEAPLAB_CHECKED: '1' } } },
    ],
  },
});
