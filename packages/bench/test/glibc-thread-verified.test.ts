import { beforeAll, describe, expect, it } from 'vitest';

import { discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import { baselineContender, type Contender } from '../src/contenders/contender.js';
import { type IsolatedRunRequest, runThreadedIsolated } from '../src/run/isolated-run.js';
import { runThreaded } from '../src/run/threaded-run.js';
import { glibcThreadLoop } from '../src/workloads/glibc-thread/workload.js';

// The shared multithread test: every backend that registers, through a verified
// glibc-thread run (each block's bytes checked before it is freed) with 1 and 2 workers.
// Backends whose packages do not import yet are simply not registered.
const unavailable = await discoverBackends();
const contenders: Contender[] = [...resolveBackendContenders(['all']), baselineContender('thi.ng'), baselineContender('bump'), baselineContender('system')];
const ITERATIONS = 20_000;

describe('verified glibc-thread over every registered backend', () => {
  beforeAll(() => {
    if (unavailable.length > 0) console.info(`not available: ${unavailable.map((missing) => missing.package).join(', ')}`);
  });

  it('registers at least basic', () => {
    expect(contenders.map((contender) => contender.label)).toContain('basic');
  });

  describe.each(contenders.map((contender) => [contender.label, contender] as const))('%s', (_label, contender) => {
    it.each([1, 2])('%i thread(s): every block keeps its bytes, the heap checks clean', async (threads) => {
      const run = await runThreaded({
        contender,
        loop: glibcThreadLoop,
        threads,
        durationSeconds: Infinity,
        maxIterations: ITERATIONS,
        verify: true,
        heapBytes: 64 << 20,
      });
      expect(run.iterations).toBe(ITERATIONS * threads);
      expect(run.perThreadIterations).toEqual(new Array(threads).fill(ITERATIONS));
      if (process.platform === 'linux') {
        // Each thread's own CPU time over its loop (which frees nothing after timing), not the
        // process's: with two threads that would be up to twice a thread's loop time.
        expect(run.threadCpuSeconds).toHaveLength(threads);
        run.threadCpuSeconds!.forEach((cpu, index) => {
          // The kernel counts a running thread's time at its ticks (thread-clock.ts): a loop
          // shorter than a few ticks (the bump allocator's) may read none.
          if (run.threadSeconds[index]! > 0.05) expect(cpu).toBeGreaterThan(0);
          expect(cpu).toBeGreaterThanOrEqual(0);
          expect(cpu).toBeLessThanOrEqual(run.threadSeconds[index]! + 0.005);
        });
        for (const wait of run.threadWaitSeconds!) expect(wait).toBeGreaterThanOrEqual(0);
      }
      if (contender.kind === 'heaplab') {
        // 1005 slots per thread stay live at the end (the C benchmark frees nothing).
        expect(run.check!.liveBlocks).toBe(1005 * threads);
        expect(run.peakUsedBytes).toBeGreaterThan(0);
        expect(run.peakFootprintBytes).toBeGreaterThanOrEqual(run.peakUsedBytes! / 2);
        // Memory touched: the live blocks were filled, so at least their pages, and never more than the heap.
        expect(run.touchedBytes).toBeGreaterThanOrEqual(run.check!.liveBlocks * 4);
        expect(run.touchedBytes).toBeLessThanOrEqual(64 << 20);
      }
    });
  });
});

describe('a failing thread', () => {
  it('fails the run with the thread and the reason', async () => {
    // A heap too small for even one thread's live set: malloc returns 0 in a worker.
    const failing = runThreaded({
      contender: baselineContender('thi.ng'),
      loop: glibcThreadLoop,
      threads: 2,
      durationSeconds: Infinity,
      maxIterations: ITERATIONS,
      verify: true,
      heapBytes: 64 << 10,
    });
    await expect(failing).rejects.toThrow(/thread \d of 2: malloc\(\d+\) returned 0/);
  });
});

describe('a one-thread row in a process of its own', () => {
  /** A one-thread glibc-thread request on a 64 MiB heap, bounded by `maxIterations`. */
  function oneThread(backend: string, overrides: Partial<IsolatedRunRequest> = {}): IsolatedRunRequest {
    return {
      contender: { kind: 'heaplab', label: backend, spec: { name: backend, options: {} } },
      workload: glibcThreadLoop.workload,
      threads: 1,
      durationSeconds: Infinity,
      maxIterations: ITERATIONS,
      verify: true,
      heapBytes: 64 << 20,
      ...overrides,
    };
  }

  it('runs there and brings back the same figures a run here gives', async () => {
    const request = oneThread('mimalloc');
    const isolated = await runThreadedIsolated(request);
    const { workload: _workload, ...run } = request;
    const here = await runThreaded({ ...run, loop: glibcThreadLoop });
    expect(isolated.iterations).toBe(ITERATIONS);
    expect(isolated.check!.liveBlocks).toBe(1005);
    // The loop is deterministic: the same blocks end up live, of the same sizes.
    expect(isolated.check!.usedBytes).toBe(here.check!.usedBytes);
    expect(isolated.peakFootprintBytes).toBe(here.peakFootprintBytes);
    expect(isolated.maxRssKiB).toBeGreaterThan(0);
  });

  it("fails with the child's reason", async () => {
    const failing = runThreadedIsolated(oneThread('no-such-backend', { maxIterations: 10, verify: false }));
    await expect(failing).rejects.toThrow(/unknown backend 'no-such-backend'/);
  });

  it('kills a timed run that overstays its grace', async () => {
    // With no grace the watchdog fires first: the child needs its start-up plus the run.
    const overstaying = runThreadedIsolated(oneThread('mimalloc', { durationSeconds: 0.2, maxIterations: Infinity, verify: false }), 0);
    await expect(overstaying).rejects.toThrow(/took longer than 0.2 s and was killed/);
  });
});
