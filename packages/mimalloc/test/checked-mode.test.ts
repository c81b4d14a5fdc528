/**
 * Checked mode (`GlobalAllocator.create({ checked: true })`, `HEAPLAB_CHECKED=1`; issue #12):
 * the operation that touches a damaged structure reports it. Each case damages a heap the
 * same way in both modes: the default mode goes on (only check() would tell), checked mode
 * raises HeapCorrupted at that operation.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';
import { expectAllocError } from '@heaplab/test-kit';

import { mimallocBackend } from '../src/index.js';
import { PG_USED } from '../src/layout.js';
import { pageOf } from './helpers.js';

function heapIn(checked: boolean): GlobalAllocator {
  return GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 16 * MiB, checked });
}

/** Detaches a heap the test damaged: checked mode reports the damage there too. */
function detachDamaged(heap: GlobalAllocator): void {
  try {
    heap.detach();
  } catch (error) {
    expect((error as { kind?: string }).kind).toBe('HeapCorrupted');
  }
}

/**
 * Runs `damage` then `operation` in both modes: the default mode goes on (`plainAfter` says
 * what it did), checked mode raises at `operation`.
 */
function caughtOnlyWhenChecked(
  damage: (heap: GlobalAllocator) => void,
  operation: (heap: GlobalAllocator) => unknown,
  plainAfter: (heap: GlobalAllocator, result: unknown) => void,
  what: RegExp,
): void {
  const plain = heapIn(false);
  damage(plain);
  plainAfter(plain, operation(plain));
  detachDamaged(plain);
  const checked = heapIn(true);
  damage(checked);
  expect(expectAllocError(() => operation(checked), 'HeapCorrupted').message).toMatch(what);
  detachDamaged(checked);
}

describe('checked mode', () => {
  it('a pop refuses a free-list link inside the page but off its block grid', () => {
    let blocks: number[] = [];
    caughtOnlyWhenChecked(
      (heap) => {
        blocks = Array.from({ length: 8 }, () => heap.malloc(64));
        // An overflow of the last block into the free block after it: its link points into
        // the middle of a live block of the same page.
        heap.memory.u32[(blocks[7]! + 64) >>> 2] = blocks[2]! + 8;
      },
      (heap) => [heap.malloc(64), heap.malloc(64)],
      // The default mode hands the inside of a live block out; check() tells.
      (heap, result) => {
        expect((result as number[])[1]).toBe(blocks[2]! + 8);
        expectAllocError(() => heap.check(), 'HeapCorrupted');
      },
      /free list/,
    );
  });

  it('a pop refuses a free block written after it was freed (its marker gone)', () => {
    let victim = 0;
    caughtOnlyWhenChecked(
      (heap) => {
        const blocks = Array.from({ length: 8 }, () => heap.malloc(64));
        victim = blocks[5]!;
        heap.free(victim);
        // Use up the rest of the first extension: the next malloc takes local_free, which
        // holds only the victim.
        for (let i = 0; i < 56; i++) heap.malloc(64);
        heap.memory.u32[(victim + 4) >>> 2] = 0x12345678;
      },
      (heap) => heap.malloc(64),
      // The default mode hands the written block out again, and nothing is left to tell.
      (_heap, result) => expect(result).toBe(victim),
      /lost its freed marker|written after it was freed/,
    );
  });

  it('a page that changes state refuses counts that do not add up', () => {
    caughtOnlyWhenChecked(
      (heap) => {
        const block = heap.malloc(64);
        // A bug (or a stray write into the descriptor) counts three blocks too many in use.
        const word = (pageOf(heap, block) + PG_USED) >>> 2;
        heap.memory.u32[word] = heap.memory.u32[word]! + 3;
      },
      // Using up the first extension makes the page collect its lists and extend.
      (heap) => {
        for (let i = 0; i < 80; i++) heap.malloc(64);
      },
      (heap) => expectAllocError(() => heap.check(), 'HeapCorrupted'),
      /!= capacity|blocks in use of/,
    );
  });

  it('a local free refuses a page that counts no block in use', () => {
    let block = 0;
    caughtOnlyWhenChecked(
      (heap) => {
        block = heap.malloc(64);
        heap.malloc(64);
        heap.memory.u32[(pageOf(heap, block) + PG_USED) >>> 2] = 0;
      },
      (heap) => heap.free(block),
      // The default mode's count wraps: only check() tells.
      (heap) => expectAllocError(() => heap.check(), 'HeapCorrupted'),
      /none is in use/,
    );
  });
});
