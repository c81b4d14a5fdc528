import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { MAX_SLACK } from '../src/layout.js';
import { expectNotAllocated, makeTlsf, MiB } from './fixture.js';

/** The block size a request of `size` bytes needs, by the block format: 8-byte header, 8-byte units. */
function blockSizeFor(size: number): number {
  return size <= 8 ? 16 : Math.ceil(size / 8) * 8 + 8;
}

interface LiveBlock {
  size: number;
  seed: number;
  /** Allocated with an alignment above 8: the block carries an 8-byte alignment trailer. */
  aligned: boolean;
}

const size = fc.oneof(fc.nat(300), fc.nat(6000), fc.nat(400_000));
const op = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('allocate' as const), size, alignLog: fc.oneof(fc.constant(3), fc.integer({ min: 3, max: 16 })) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('resize' as const), pick: fc.nat(), size }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bad-free' as const), pick: fc.nat(), offset: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'add-pool' as const }) },
);

describe.each([
  ['', false],
  [' (checked mode: no false alarm)', true],
] as const)('TLSF against a model, after random sequences%s', (_mode, checked) => {
  it('keeps every invariant, picks the block the two-level search names, and resizes in place whenever the neighbour allows', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 80 }), (ops) => {
        const { tlsf, walk, memory, ctx, addMemory } = makeTlsf(8 * MiB, 2 * MiB, checked);
        const u8 = memory.u8;
        const live = new Map<number, LiveBlock>();
        const freed = new Set<number>();
        let nextSeed = 1;
        let pools = 1;
        const fill = (address: number, block: LiveBlock): void => {
          u8.fill(block.seed, address, address + block.size);
        };
        const intact = (address: number, block: LiveBlock, bytes = block.size): void => {
          const view = u8.subarray(address, address + bytes);
          expect(
            view.every((byte) => byte === block.seed),
            `contents of the block at ${address}`,
          ).toBe(true);
        };
        const pick = (index: number): number | undefined => [...live.keys()][index % Math.max(1, live.size)];

        for (const step of ops) {
          switch (step.kind) {
            case 'allocate': {
              const align = 2 ** step.alignLog;
              const blockSize = blockSizeFor(step.size) + (align > 8 ? 8 : 0);
              const expected = walk.expectedFit(align > 8 ? blockSize + align + 8 : blockSize);
              const address = tlsf.allocate(step.size, align);
              if (expected === 0) {
                expect(address, `allocate(${step.size}, ${align}) with no list that fits`).toBe(0);
                break;
              }
              expect(address % align).toBe(0);
              const gap = address - 8 - expected;
              if (align === 8) expect(gap, 'the block comes from the head the search names').toBe(0);
              else expect(gap === 0 || (gap >= 16 && gap <= align + 8), `gap ${gap} for align ${align}`).toBe(true);
              const usable = tlsf.usableSize(address);
              expect(usable).toBeGreaterThanOrEqual(step.size);
              expect(usable - step.size).toBeLessThanOrEqual(MAX_SLACK);
              expect(tlsf.requestedSize(address)).toBe(step.size);
              const block = { size: step.size, seed: nextSeed++ & 0xff, aligned: align > 8 };
              expect(tlsf.blockLayout(address)).toEqual({ minSize: step.size, maxSize: step.size, minAlign: Math.max(8, align), maxAlign: Math.max(8, align) });
              fill(address, block);
              live.set(address, block);
              freed.delete(address);
              break;
            }
            case 'release': {
              const address = pick(step.pick);
              if (address === undefined) break;
              intact(address, live.get(address)!);
              tlsf.release(address);
              live.delete(address);
              freed.add(address);
              break;
            }
            case 'resize': {
              const address = pick(step.pick);
              if (address === undefined) break;
              const block = live.get(address)!;
              const walked = walk.blocks().find((candidate) => candidate.address === address - 8)!;
              const room = walked.size + (walked.nextFree ? walked.nextSize : 0);
              const resized = tlsf.resizeInPlace(address, step.size);
              const wanted = blockSizeFor(step.size) + (block.aligned ? 8 : 0);
              // An aligned block's trailer cannot move 8 bytes into a free next block that is
              // then split (it would land on that block's size word before the commit).
              const trailerBlocked = block.aligned && walked.nextFree && wanted === walked.size + 8 && room - wanted >= 16;
              expect(resized, `resize ${walked.size}-byte block to ${step.size} with ${room} bytes of room`).toBe(wanted <= room && !trailerBlocked);
              intact(address, block, Math.min(block.size, resized ? step.size : block.size));
              if (resized) {
                expect(tlsf.usableSize(address)).toBeGreaterThanOrEqual(step.size);
                expect(tlsf.requestedSize(address)).toBe(step.size);
                expect(tlsf.blockLayout(address).minAlign).toBe(block.aligned ? tlsf.blockLayout(address).maxAlign : 8);
                block.size = step.size;
                fill(address, block);
              }
              break;
            }
            case 'bad-free': {
              const address = pick(step.pick);
              if (address !== undefined) expectNotAllocated(() => tlsf.release(address + step.offset * 8), address + step.offset * 8);
              for (const stale of freed) expectNotAllocated(() => tlsf.usableSize(stale), stale);
              break;
            }
            case 'add-pool': {
              if (pools === 4) break;
              addMemory(ctx.arenaStart + (1 + 2 * pools) * MiB, 1 * MiB);
              pools++;
              break;
            }
          }
          walk.expectInvariants();
          const report = tlsf.check();
          expect(report.liveBlocks).toBe(live.size);
          expect(report.pools).toBe(pools);
          const stats = tlsf.stats();
          let requested = 0;
          let granted = 0;
          for (const [address, block] of live) {
            requested += block.size;
            granted += tlsf.usableSize(address);
          }
          expect(stats.requestedBytes).toBe(requested);
          expect(stats.grantedBytes).toBe(granted);
        }
        for (const [address, block] of live) {
          intact(address, block);
          tlsf.release(address);
        }
        expect(tlsf.usedBytes()).toBe(0);
        expect(tlsf.check()).toMatchObject({ blocks: pools, freeBlocks: pools, liveBlocks: 0 });
      }),
      { numRuns: 120, seed: 0x7151f },
    );
  });
});
