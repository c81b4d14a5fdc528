/**
 * The basic backend's refill runs (`allocateRun`): the test kit's suite on every strategy,
 * in default and checked mode, then what basic's own structure promises of a run: its blocks
 * one block size apart, each recording the size asked, the last stretched to end 8 bytes
 * before a line; runs side by side without a gap; the free block each strategy picks; the
 * arithmetic of run.ts over every size; and corruption met on the way.
 */

import { BackendFixture, describeRefillRuns, expectAllocError, expectRunHolds, takeRun } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';
import { RUN_LINE_BYTES, TC_MAX_REQUEST } from '../../src/backend/index.js';
import { BASIC_STRATEGIES, type BasicAllocator, basicBackend, type BasicStrategy } from '../../src/basic/index.js';
import { blockBytes, HEADER_BYTES, MIN_BLOCK, SLACK_MASK } from '../../src/basic/layout.js';
import { runLength, runSpan, runStart } from '../../src/basic/run.js';
import { hex } from '../../src/errors.js';

for (const strategy of BASIC_STRATEGIES) {
  for (const checked of [false, true]) {
    describeRefillRuns({ label: `basic (${strategy}${checked ? ', checked' : ''})`, descriptor: basicBackend, options: { strategy }, checked });
  }
}

/** The blocks core's cache asks for at a size (its refill: 512 bytes, 1 to 64 blocks). */
function countFor(size: number): number {
  return Math.min(64, Math.max(1, (512 / size) | 0));
}

function fixture(strategy: BasicStrategy = 'first-fit', checked = false): BackendFixture<unknown, BasicAllocator> {
  return new BackendFixture(basicBackend, { strategy }, { checked }).init();
}

/** The free blocks of the heap, as [block, size] in address order (white-box: reads headers). */
function freeBlocks(f: BackendFixture<unknown, BasicAllocator>): [number, number][] {
  const found: [number, number][] = [];
  f.backend.walk((region) => {
    if (region.kind === 'free') found.push([region.address - HEADER_BYTES, region.bytes + HEADER_BYTES]);
  });
  return found;
}

describe('basic runs: the blocks of one run', () => {
  it('are one block size apart, record the size asked, and the last ends 8 bytes before a line', () => {
    for (let size = 8; size <= TC_MAX_REQUEST; size += 8) {
      const f = fixture();
      const count = countFor(size);
      const blocks = takeRun(f.backend, size, count);
      expect(blocks.length, `a run of ${size}-byte blocks on a fresh heap`).toBe(count);
      expectRunHolds(f.backend, blocks, size);
      const stride = blockBytes(size);
      for (const [k, block] of blocks.entries()) {
        if (k > 0) expect(block - blocks[k - 1]!, `stride of ${size}-byte blocks`).toBe(stride);
        expect(f.backend.requestedSize(block)).toBe(size);
        expect(f.backend.blockLayout(block)).toEqual({ minSize: size, maxSize: size, minAlign: 8, maxAlign: 8 });
        if (k < blocks.length - 1) expect(f.backend.usableSize(block)).toBe(stride - HEADER_BYTES);
      }
      const last = blocks[blocks.length - 1]!;
      const end = last + f.backend.usableSize(last);
      // The next header ends a line, so the next payload starts one: the tail's free block.
      expect((end + HEADER_BYTES) % RUN_LINE_BYTES, `end of a run of ${size}-byte blocks`).toBe(0);
      expect(end - (last + size), `stretch of the last ${size}-byte block`).toBeLessThan(RUN_LINE_BYTES);
      expect(freeBlocks(f).at(-1)![0]).toBe(end);
      f.backend.check();
    }
  });

  it('follow one another without a gap, and each run starts on a line', () => {
    for (const strategy of BASIC_STRATEGIES) {
      const f = fixture(strategy);
      let previousEnd = 0;
      for (let round = 0; round < 40; round++) {
        const size = 8 * (1 + ((round * 37) % 128));
        const blocks = takeRun(f.backend, size, countFor(size));
        expectRunHolds(f.backend, blocks, size);
        // Worst fit takes the end of the one big free block too: the lowest part is cut first.
        if (previousEnd !== 0) expect(blocks[0]! - HEADER_BYTES, `${strategy}: run ${round} of ${size}-byte blocks`).toBe(previousEnd);
        const last = blocks[blocks.length - 1]!;
        previousEnd = last + f.backend.usableSize(last);
      }
      // The first run left the pool's first line free (a block of 56: the first payload is
      // on the second line), the runs nothing else but the rest of the pool.
      expect(freeBlocks(f)).toEqual([
        [f.context.arenaStart, RUN_LINE_BYTES - HEADER_BYTES],
        [previousEnd, f.context.arenaEnd - 8 - previousEnd],
      ]);
      f.backend.check();
    }
  });

  it('are freed back into one free block', () => {
    const f = fixture();
    const runs = [16, 48, 200, 1024, 8].map((size) => takeRun(f.backend, size, countFor(size)));
    for (const run of runs.reverse()) for (const block of run) f.backend.release(block);
    expect(freeBlocks(f)).toHaveLength(1);
    expect(f.backend.usedBytes()).toBe(0);
    f.backend.check();
  });
});

describe('basic runs: the free block a strategy picks', () => {
  /**
   * A heap cut into holes of the given block sizes between live guards, the rest of the arena
   * live when `fillRest` (else one big free block). Returns each hole's [start, end).
   */
  function holes(strategy: BasicStrategy, sizes: number[], fillRest: boolean): { f: BackendFixture<unknown, BasicAllocator>; at: [number, number][] } {
    const f = fixture(strategy);
    const made: number[] = [];
    const at: [number, number][] = [];
    for (const bytes of sizes) {
      const hole = f.backend.allocate(bytes - HEADER_BYTES, 8);
      made.push(hole);
      at.push([hole - HEADER_BYTES, hole - HEADER_BYTES + bytes]);
      expect(f.backend.allocate(100, 8)).not.toBe(0);
    }
    if (fillRest) expect(f.backend.allocate(f.backend.stats().largestFreeBlock, 8)).not.toBe(0);
    for (const hole of made) f.backend.release(hole);
    expect(freeBlocks(f)).toHaveLength(sizes.length + (fillRest ? 0 : 1));
    return { f, at };
  }

  /** Which hole a run's blocks are in (-1: the rest of the arena). */
  function holeOf(at: [number, number][], blocks: number[]): number {
    const index = at.findIndex(([start, end]) => blocks[0]! >= start && blocks[blocks.length - 1]! < end);
    return index;
  }

  // 8 blocks of 64 bytes need 576 bytes and a gap of at most 80 before them: a 200-byte
  // hole holds a shorter run only; 1000 and 2000 bytes hold the whole run.
  const SIZES = [200, 2000, 1000];
  const EXPECTED: Record<BasicStrategy, [number, number]> = {
    // [hole with the rest of the arena free, hole with the rest live]
    'first-fit': [1, 1],
    'best-fit': [2, 2],
    'worst-fit': [-1, 1],
  };

  for (const strategy of BASIC_STRATEGIES) {
    it(`${strategy} picks among the free blocks that hold the whole run as allocate would`, () => {
      for (const [column, fillRest] of [false, true].entries()) {
        const { f, at } = holes(strategy, SIZES, fillRest);
        const blocks = takeRun(f.backend, 64, 8);
        expect(blocks).toHaveLength(8);
        expectRunHolds(f.backend, blocks, 64);
        expect(holeOf(at, blocks), `${strategy}, rest of the arena ${fillRest ? 'live' : 'free'}`).toBe(EXPECTED[strategy][column]);
        f.backend.check();
      }
    });

    it(`${strategy} takes the free block holding the most blocks when none holds the whole run`, () => {
      const { f, at } = holes(strategy, [200, 500, 300], true);
      const blocks = takeRun(f.backend, 64, 8);
      expect(blocks.length).toBeGreaterThan(0);
      expect(blocks.length).toBeLessThan(8);
      expectRunHolds(f.backend, blocks, 64);
      // The 500-byte hole holds 5 or more, the others 3 or fewer, whatever the strategy.
      expect(holeOf(at, blocks)).toBe(1);
      f.backend.check();
    });
  }

  it('returns 0 and changes nothing when no free block holds one line-aligned block', () => {
    for (const strategy of BASIC_STRATEGIES) {
      const { f } = holes(strategy, [48, 64, 80], true);
      const before = f.memory.u8.slice();
      expect(f.backend.allocateRun(64, 8, () => expect.unreachable('no block to take'))).toBe(0);
      expect(Buffer.compare(f.memory.u8, before), 'the heap changed').toBe(0);
      f.backend.check();
    }
  });
});

describe('basic runs: run.ts arithmetic', () => {
  it('starts a run on a line with no gap or a gap that is a free block', () => {
    for (let fb = 4096; fb < 4096 + 2 * RUN_LINE_BYTES; fb += 8) {
      const start = runStart(fb);
      expect((start + HEADER_BYTES) % RUN_LINE_BYTES).toBe(0);
      const gap = start - fb;
      expect(gap === 0 || (gap >= MIN_BLOCK && gap < MIN_BLOCK + RUN_LINE_BYTES), `gap ${gap} at ${hex(fb)}`).toBe(true);
    }
    // Addresses at and above 2^31 are not turned negative.
    expect(runStart(0x8000_0000 - HEADER_BYTES)).toBe(0x8000_0000 - HEADER_BYTES);
    expect(runStart(0xffff_0000)).toBe(0xffff_0038);
  });

  it('gives every size a run that fits, whose last block the tag can describe, and the whole run when there is room', () => {
    // Plain checks gathered into one list: an expect per case would take half a minute.
    const wrong: string[] = [];
    for (let size = 8; size <= TC_MAX_REQUEST; size += 8) {
      const bytes = blockBytes(size);
      for (const count of [1, 2, 3, 7, countFor(size), 64]) {
        for (let room = 0; room <= runSpan(count, bytes) + 2 * RUN_LINE_BYTES; room += 8) {
          const blocks = runLength(0, room, bytes, size, count);
          const where = `${blocks} of ${count} blocks of ${size} bytes in ${room} bytes`;
          if (blocks < 0 || blocks > count) wrong.push(`${where}: out of range`);
          // Room for the whole run and a free tail: the whole run, or for 8-byte blocks (whose
          // rounding to 16 is slack already) one block less when the stretch would overflow the tag.
          const whole = size === 8 && count % 8 === 3 ? count - 1 : count;
          if (room >= runSpan(count, bytes) + MIN_BLOCK && blocks !== whole) wrong.push(`${where}: not ${whole}`);
          if (blocks <= 0) {
            // Not even one block: the room is less than one block's line-rounded span and a
            // free tail (a one-block run with a smaller tail may need more slack than the tag holds).
            if (room >= runSpan(1, bytes) + MIN_BLOCK) wrong.push(`${where}: none although one fits`);
            continue;
          }
          const span = runSpan(blocks, bytes);
          if (span > room || span % RUN_LINE_BYTES !== 0) wrong.push(`${where}: span ${span}`);
          const tail = room - span;
          const last = span - (blocks - 1) * bytes + (tail < MIN_BLOCK ? tail : 0);
          if (last < bytes || last - HEADER_BYTES - size > SLACK_MASK) wrong.push(`${where}: last block of ${last} bytes`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('basic runs: corruption', () => {
  it('reports a free-list link out of the arena instead of following it', () => {
    for (const strategy of BASIC_STRATEGIES) {
      const f = fixture(strategy);
      const a = f.backend.allocate(100, 8);
      f.backend.allocate(100, 8);
      f.backend.release(a);
      // a's free block is first on the list: its next link now points past the arena.
      f.memory.u32[(a - HEADER_BYTES + 8) >>> 2] = f.context.arenaEnd + 64;
      expectAllocError(() => f.backend.allocateRun(64, 8, () => {}), 'HeapCorrupted');
    }
  });

  it('checked mode reports a damaged footer of the free block the run is cut from', () => {
    const f = fixture('first-fit', true);
    const [[block, size]] = freeBlocks(f) as [[number, number]];
    f.memory.u32[(block + size - 4) >>> 2] = 64;
    const error = expectAllocError(() => f.backend.allocateRun(64, 8, () => {}), 'HeapCorrupted');
    expect(error.message).toContain(hex(block));
  });
});
