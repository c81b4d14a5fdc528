import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { HeapRegion, HeapRegionKind } from '@heaplab/core';
import { describe, expect, it } from 'vitest';

import { createBackendHeap } from '../src/contenders/backends.js';
import type { BackendContender } from '../src/contenders/contender.js';
import { fragmentationFigures } from '../src/inspect/fragmentation.js';
import { heapMapSvg, KIND_COLOURS, MAP_COLUMNS, MAP_ROWS } from '../src/inspect/heap-map-svg.js';
import { findMapTarget, type HeapMoment, mapTargets, NoWalkError, parseMoment, takeMoments } from '../src/inspect/heap-moments.js';
import { RecordingAllocator } from '../src/inspect/recording-allocator.js';
import { loopMemory, RUN_CONTROL_BYTES } from '../src/run/address-allocator.js';
import { WORKLOAD_LIST } from '../src/workloads/index.js';
import { heaplabInProcess, NO_WALK_BACKEND, walkingBackends } from './inspect-helpers.js';

const { walking, notWalking } = walkingBackends();

const contender = (name: string): BackendContender => ({ kind: 'heaplab', label: name, spec: { name, options: {} } });

describe('fragmentation figures', () => {
  it('count a walk by kind, with external fragmentation from the largest free block and the extra memory rate from what was asked', () => {
    const regions: HeapRegion[] = [
      { address: 0, bytes: 16, kind: 'metadata' },
      { address: 16, bytes: 8, kind: 'header' },
      { address: 24, bytes: 40, kind: 'live' },
      { address: 64, bytes: 100, kind: 'free' },
      { address: 164, bytes: 8, kind: 'header' },
      { address: 172, bytes: 24, kind: 'live' },
      { address: 196, bytes: 300, kind: 'free' },
      { address: 496, bytes: 16, kind: 'untouched' },
    ];
    const figures = fragmentationFigures(regions, { usedBytes: 80, largestFreeBlock: 296 }, 50, 7);
    expect(figures).toEqual({
      calls: 7,
      arenaBytes: 512,
      liveBlocks: 2,
      requestedBytes: 50,
      grantedBytes: 64,
      usedBytes: 80,
      freeBytes: 400,
      freeBlocks: 2,
      largestFreeBlock: 300,
      mallocableBytes: 296,
      externalFragmentation: 0.25,
      internalFragmentationBytes: 14,
      internalFragmentationShare: 14 / 64,
      extraMemoryRate: 30 / 80,
      headerBytes: 16,
      metadataBytes: 16,
      untouchedBytes: 16,
    });
  });

  it('are 0, not NaN, on a heap with nothing free or used', () => {
    const figures = fragmentationFigures([{ address: 0, bytes: 64, kind: 'untouched' }], { usedBytes: 0, largestFreeBlock: 0 }, 0, 0);
    expect(figures.externalFragmentation).toBe(0);
    expect(figures.extraMemoryRate).toBe(0);
    expect(figures.internalFragmentationShare).toBe(0);
  });
});

describe('the heap map SVG', () => {
  // A 4 MiB arena: 128 bytes per pixel.
  const arenaStart = 4 << 20;
  const arenaBytes = 4 << 20;
  const bytesPerPixel = arenaBytes / (MAP_ROWS * MAP_COLUMNS);
  const regions: HeapRegion[] = [
    { address: arenaStart, bytes: 4096, kind: 'metadata' },
    { address: arenaStart + 4096, bytes: 16, kind: 'header' },
    { address: arenaStart + 4112, bytes: 1024, kind: 'live', requested: 1000, detail: 'order 10' },
    { address: arenaStart + 5136, bytes: 65_536 - 5136, kind: 'free' },
    { address: arenaStart + 65_536, bytes: arenaBytes - 65_536, kind: 'untouched' },
  ];
  const figures = fragmentationFigures(regions, { usedBytes: 1040, largestFreeBlock: 60_000 }, 1000, 3);
  const svg = heapMapSvg(regions, arenaStart, figures, { backend: 'test', workload: 'w', at: '50%' });

  it('draws every kind present, with a tooltip naming what the backend said', () => {
    expect(svg.startsWith('<svg')).toBe(true);
    for (const kind of new Set(regions.map((region) => region.kind))) {
      expect(svg).toMatch(new RegExp(`data-kinds="[a-z ]*\\b${kind}\\b`));
      expect(svg).toContain(`<g class="legend" data-kind="${kind}">`);
    }
    expect(svg).toContain('live at 0x401010, 1,024 B, requested 1,000 B, order 10');
    expect(svg).toContain(`one pixel column = ${bytesPerPixel} B`);
  });

  it('keeps a region smaller than a pixel visible by mixing its colour in', () => {
    // The 16-byte header shares its pixel (4096..4223) with 112 bytes of the live block.
    const mixed = svg.match(/fill="(#[0-9a-f]{6})" data-kinds="live header"/);
    expect(mixed).not.toBeNull();
    expect(mixed![1]).not.toBe(KIND_COLOURS.live);
    expect(mixed![1]).not.toBe(KIND_COLOURS.header);
  });

  it('writes the figures beside the strip', () => {
    expect(svg).toContain('data-figure="externalFragmentation">0.00 %');
    expect(svg).toContain('data-figure="extraMemoryRate">3.85 %');
    expect(svg).toContain('data-figure="requestedBytes">1,000 B');
  });

  it('refuses regions outside the arena', () => {
    expect(() => heapMapSvg([{ address: 0, bytes: 8, kind: 'free' }], arenaStart, figures, { backend: 'b', workload: 'w', at: '1%' })).toThrow(/outside/);
  });
});

describe('moments of a run', () => {
  it('parses percentages and fractions and refuses anything outside (0, 1]', () => {
    expect(parseMoment('25%')).toEqual({ label: '25%', fraction: 0.25 });
    expect(parseMoment('0.5')).toEqual({ label: '50%', fraction: 0.5 });
    expect(parseMoment('12.5%')).toEqual({ label: '12.5%', fraction: 0.125 });
    for (const bad of ['0', '0%', '101%', '1.5', 'half', '', '%', '-5%']) expect(() => parseMoment(bad)).toThrow(/no moment/);
  });

  it('maps every workload with a loop and the ArceOS tests, and names what it refuses', () => {
    const names = mapTargets().map((target) => target.name);
    for (const workload of WORKLOAD_LIST) if (workload.threadLoop !== undefined) expect(names).toContain(workload.name);
    expect(names).toEqual(expect.arrayContaining(['random-free', 'arceos:vec_2', 'arceos:align', 'arceos:malloc_large']));
    expect(() => findMapTarget('robson')).toThrow(/'robson' has no loop a map can run.*glibc-thread/);
    expect(() => findMapTarget('nope')).toThrow(/no workload 'nope'/);
  });

  it('counts every call and keeps the requested sizes of live blocks', () => {
    const heap = createBackendHeap({ name: 'basic', options: {} }, 8 << 20);
    const seen: number[] = [];
    const recorder = new RecordingAllocator(heap, (calls) => seen.push(calls));
    const a = recorder.malloc(100);
    const b = recorder.alignedAlloc(64, 30);
    const c = recorder.realloc(a, 500);
    recorder.free(b);
    expect(seen).toEqual([1, 2, 3, 4]);
    expect([...recorder.requested]).toEqual([[c, 500]]);
    expect(recorder.requestedBytes).toBe(500);
    heap.detach();
  });

  it.each(walking)('%s: figures agree with the walk, and half-way differs from the end', (backend) => {
    const moments = takeMoments(contender(backend), findMapTarget('glibc-thread'), [parseMoment('50%'), parseMoment('100%')], {
      heapBytes: 8 << 20,
      iterations: 3000,
    });
    const check = (moment: HeapMoment): void => {
      const live = moment.regions.filter((region) => region.kind === 'live');
      const free = moment.regions.filter((region) => region.kind === 'free');
      const { figures } = moment;
      expect(figures.arenaBytes).toBe(8 << 20);
      expect(figures.liveBlocks).toBe(live.length);
      expect(figures.grantedBytes).toBe(live.reduce((sum, region) => sum + region.bytes, 0));
      // Every live block was asked for through the recorder, which gave each its requested size.
      expect(figures.requestedBytes).toBe(live.reduce((sum, region) => sum + region.requested!, 0));
      expect(figures.freeBytes).toBe(free.reduce((sum, region) => sum + region.bytes, 0));
      expect(figures.freeBlocks).toBe(free.length);
      expect(figures.largestFreeBlock).toBe(Math.max(0, ...free.map((region) => region.bytes)));
      expect(figures.externalFragmentation).toBeCloseTo(figures.freeBytes === 0 ? 0 : 1 - figures.largestFreeBlock / figures.freeBytes, 12);
      expect(figures.extraMemoryRate).toBeCloseTo((figures.usedBytes - figures.requestedBytes) / figures.usedBytes, 12);
      expect(figures.grantedBytes).toBeGreaterThanOrEqual(figures.requestedBytes);
    };
    const [half, whole] = moments as [HeapMoment, HeapMoment];
    check(half);
    check(whole);
    // glibc-thread: 3000 iterations of a free (once a slot is taken) and a malloc.
    expect(half.figures.calls).toBe(Math.round(whole.figures.calls / 2));
    expect(half.regions).not.toEqual(whole.regions);
    expect(half.figures.liveBlocks).toBeLessThan(whole.figures.liveBlocks);
  });

  it('refuses a backend without walk', () => {
    expect(notWalking).toContain(NO_WALK_BACKEND);
    expect(() => takeMoments(contender(NO_WALK_BACKEND), findMapTarget('glibc-thread'), [parseMoment('100%')], { heapBytes: 8 << 20, iterations: 10 })).toThrow(
      NoWalkError,
    );
  });

  it('a loop with leaveLive keeps what its clean-up would free', () => {
    // xmalloc-test's one thread both produces and consumes, so its run leaves nothing to drain.
    const cleaned = ['alloc-pairs', 'alloc-test', 'sh6bench', 'mid-large', 'larson', 'mstress', 'rptest'];
    for (const name of cleaned) {
      const loop = WORKLOAD_LIST.find((workload) => workload.name === name)!.threadLoop!;
      const liveAfter = (leaveLive: boolean): number => {
        const heap = createBackendHeap({ name: 'basic', options: {} }, 64 << 20);
        try {
          const limits = { stop: new Int32Array(new SharedArrayBuffer(RUN_CONTROL_BYTES)), deadline: Infinity, maxIterations: 300 };
          const thread = { threadIndex: 0, threads: 1, verify: false, runState: loop.runState?.(1) ?? null, leaveLive };
          loop.run(heap, loopMemory(heap.buffer), loop.sharedInput(), limits, thread);
          return heap.stats().liveBlocks;
        } finally {
          heap.detach();
        }
      };
      expect([name, liveAfter(false)]).toEqual([name, 0]);
      expect(liveAfter(true), name).toBeGreaterThan(0);
    }
  });

  it('the ArceOS tests with leaveLive keep what they would drop, after their own frees', () => {
    const target = findMapTarget('arceos:vec_2');
    const heap = createBackendHeap({ name: 'basic', options: {} }, 64 << 20);
    const recorder = new RecordingAllocator(heap);
    target.run(recorder, 200);
    // Each vec_2 test leaves its two vectors (the blocks' and the order's); the blocks are freed in shuffled order.
    expect(heap.stats().liveBlocks).toBe(4);
    expect(recorder.requested.size).toBe(4);
    heap.detach();
  });
});

describe('heaplab map', () => {
  it('writes one SVG per walking backend and moment, map.json in its shape, and the page', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'heaplab-map-'));
    const result = await heaplabInProcess(
      'map',
      '--backend',
      'all',
      '--workload',
      'glibc-thread',
      '--iterations',
      '2000',
      '--heap-mib',
      '8',
      '--at',
      '50%,1',
      '--out',
      directory,
      '--html',
    );
    expect(result.stderr).not.toMatch(/FAILED/);
    expect(result.status).toBe(0);
    const svgs = readdirSync(directory)
      .filter((name) => name.endsWith('.svg'))
      .sort();
    expect(svgs).toEqual(walking.flatMap((backend) => [`${backend}-100.svg`, `${backend}-50.svg`]).sort());
    for (const backend of notWalking) expect(result.stderr).toContain(`skipped ${backend}: its backend has no walk()`);
    const json = JSON.parse(readFileSync(join(directory, 'map.json'), 'utf8'));
    expect(Object.keys(json)).toEqual(['kind', 'meta', 'workload', 'moments']);
    expect(json.kind).toBe('heaplab-map');
    expect(Object.keys(json.meta)).toEqual(['version', 'command', 'date', 'node', 'heapBytes', 'seed']);
    expect(json.meta.heapBytes).toBe(8 << 20);
    expect(json.workload).toBe('glibc-thread');
    expect(json.moments).toHaveLength(svgs.length);
    for (const moment of json.moments) {
      expect(Object.keys(moment)).toEqual(['backend', 'at', 'file', 'svg', 'figures']);
      expect(existsSync(join(directory, moment.file))).toBe(true);
      expect(moment.svg).toMatch(/^<svg[\s>]/);
      expect(typeof moment.figures.externalFragmentation).toBe('number');
    }
    for (const backend of walking) expect(result.stdout).toMatch(new RegExp(`^${backend} +50% +[\\d,]+`, 'm'));
    const page = readFileSync(join(directory, 'index.html'), 'utf8');
    for (const name of svgs) expect(page).toContain(`src="${name}"`);
    expect(page).toContain('flex-wrap: wrap');
  });

  it.each([
    [['map', '--workload', 'glibc-thread', '--at', '0%', '--out', '/tmp/unused'], /'0%' is no moment/],
    [['map', '--workload', 'glibc-thread', '--at', '150%', '--out', '/tmp/unused'], /'150%' is no moment/],
    [['map', '--workload', 'glibc-thread', '--at', '50%,0.5', '--out', '/tmp/unused'], /50% is named twice/],
    [['map', '--workload', 'robson', '--at', '50%', '--out', '/tmp/unused'], /'robson' has no loop a map can run/],
    [['map', '--workload', 'glibc-thread', '--at', '50%'], /required option '-o, --out <dir>' not specified/],
    [['map', '--workload', 'glibc-thread', '--out', '/tmp/unused'], /required option '--at <list>' not specified/],
    [['map', '--workload', 'glibc-thread', '--at', '50%', '--out', '/tmp/unused', '--heap-mib', '6'], /multiples of 4 MiB/],
    [['map', '--workload', 'glibc-thread', '--at', '50%', '--out', '/tmp/unused', '--backend', 'nope'], /unknown backend 'nope'/],
  ])('refuses %j with status 1', async (args, message) => {
    const result = await heaplabInProcess(...args);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(message);
  });

  it('fails on a backend without walk named alone', async () => {
    const result = await heaplabInProcess(
      'map',
      '--backend',
      NO_WALK_BACKEND,
      '--workload',
      'glibc-thread',
      '--at',
      '50%',
      '--out',
      mkdtempSync(join(tmpdir(), 'heaplab-map-')),
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`backend '${NO_WALK_BACKEND}' has no walk()`);
  });
});

// The kinds the map colours, each with a colour of its own.
it('gives every region kind its own colour', () => {
  const kinds: HeapRegionKind[] = ['live', 'free', 'header', 'metadata', 'untouched'];
  expect(new Set(kinds.map((kind) => KIND_COLOURS[kind])).size).toBe(kinds.length);
});
