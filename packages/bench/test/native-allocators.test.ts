import { describe, expect, it } from 'vitest';

import { baselineContenders } from '../src/contenders/contender.js';
import { findNativeAllocator, NATIVE_ALLOCATORS, NATIVE_INSTALL_LINE } from '../src/contenders/native-allocators.js';
import { buildNativeProgram, parseNativeTrailer, runNativeProgram } from '../src/run/native-program.js';
import { medianRow, type ThroughputRow } from '../src/run/throughput-rows.js';
import { runNativeGlibcThread } from '../src/workloads/glibc-thread/native.js';

const compiler = buildNativeProgram('bench-malloc-thread');
const hasCompiler = 'binary' in compiler;
if (!hasCompiler) console.warn(`native tests skipped: ${compiler.missing}`);

describe('the native trailer', () => {
  it('splits the port lines from the wall, cpu, maxrss and preloaded lines', () => {
    const run = parseNativeTrailer('42 iterations\n# wall 0.5\n# cpu 0.49\n# maxrss 1900\n# preloaded none\n');
    expect(run).toEqual({ lines: ['42 iterations'], wallSeconds: 0.5, cpuSeconds: 0.49, maxRssKiB: 1900, preloaded: 'none' });
  });

  it('refuses output without a trailer', () => {
    expect(() => parseNativeTrailer('42 iterations\n# wall 0.5\n')).toThrow(/no '# cpu' line/);
  });
});

describe('the native family', () => {
  it('is one row per C allocator, each labelled with its name', () => {
    const rows = baselineContenders('native');
    expect(rows.map((row) => (row.kind === 'native' ? row.allocator : row.kind))).toEqual([...NATIVE_ALLOCATORS]);
    for (const row of rows) expect(row.label).toMatch(/^native (glibc|mimalloc|jemalloc|tcmalloc)/);
  });

  it.runIf(hasCompiler)("measures the port's own peak RSS, not the Node parent's", async () => {
    const run = await runNativeProgram('bench-malloc-thread', ['1', '0.05'], { allocator: 'glibc', timeoutSeconds: 30 });
    // The port needs a few MiB; Node's own high-water mark is far above 30 MiB.
    expect(run.maxRssKiB).toBeGreaterThan(0);
    expect(run.maxRssKiB).toBeLessThan(30 * 1024);
    expect(process.resourceUsage().maxRSS).toBeGreaterThan(30 * 1024);
    expect(run.cpuSeconds).toBeGreaterThan(0);
  });

  for (const name of NATIVE_ALLOCATORS.filter((allocator) => allocator !== 'glibc')) {
    const found = findNativeAllocator(name);
    if ('missing' in found) console.warn(`native ${name} tests skipped: ${found.missing}`);
    it.runIf(hasCompiler && !('missing' in found))(`runs the glibc-thread port against ${name}, and proves it was preloaded`, async () => {
      const row = await runNativeGlibcThread({ kind: 'native', label: `native ${name}`, allocator: name }, 2, 0.05);
      expect(row.error).toBeUndefined();
      expect(row.iterations).toBeGreaterThan(0);
      expect(row.note).toContain(`${name} (LD_PRELOAD)`);
    });
  }

  it('says what to install for a library that is missing', () => {
    expect(NATIVE_INSTALL_LINE).toBe('apt-get install -y libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4');
  });
});

describe('repeated runs', () => {
  const row = (perSecond: number, extra: Partial<ThroughputRow> = {}): ThroughputRow => ({
    label: 'x',
    kind: 'heaplab',
    threads: 1,
    iterations: perSecond,
    wallSeconds: 1,
    perSecond,
    peakUsedBytes: null,
    peakFootprintBytes: null,
    ...extra,
  });

  it('keep the median run, every rate in run order, the minimum and the maximum', () => {
    const median = medianRow([row(3, { wallSeconds: 3 }), row(1), row(2, { wallSeconds: 2 })]);
    expect(median.perSecond).toBe(2);
    expect(median.wallSeconds).toBe(2);
    expect(median.runs).toEqual([3, 1, 2]);
    expect([median.perSecondMin, median.perSecondMax]).toEqual([1, 3]);
  });

  it('fail when any run failed', () => {
    expect(medianRow([row(3), row(0, { error: 'boom' }), row(2)]).error).toBe('boom');
  });
});
