import { defineConfig } from 'vitest/config';

// The multi-worker suite starts worker threads and churns blocks in each for a few seconds:
// vitest's default of 5 s per test is too short for it.
export default defineConfig({
  test: { testTimeout: 60_000, hookTimeout: 60_000 },
});
