/**
 * Damaged metadata, case by case: what reaches the free lists and the merges is checked
 * before it is followed, so damage is reported (`HeapCorrupted`) at the operation that meets
 * it, never handed out as an address outside the arena and never carried into live blocks
 * the damage did not touch. In checked mode, damage the fast checks let pass is caught by the
 * operation that touches it too.
 */

import { AllocError, GlobalAllocator } from '@heaplab/core';
import { StateCounters } from '@heaplab/core/backend';
import { type Signature, signBlock, verifyBlock } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { listOf, tlsfBackend } from '../src/index.js';
import { B_NEXT_FREE, B_PREV_FREE, B_PREV_PHYS, B_SIZE, ST_FL_BITMAP, ST_LIST_HEADS, ST_SL_BITMAPS, SL_COUNT, USED } from '../src/layout.js';
import { errorOf, type Fixture, makeTlsf, MiB, poolSizeWord, secondInstance } from './fixture.js';

/** A heap of signed blocks of `sizes` (in order), with those at `free` freed. */
function heapOf(sizes: number[], free: number[]): Fixture & { blocks: number[]; signatures: Signature[]; live: () => number[] } {
  const fixture = makeTlsf(8 * MiB, 1 * MiB);
  const { tlsf, memory } = fixture;
  const blocks = sizes.map((size) => tlsf.allocate(size, 8));
  const signatures = sizes.map((size, sequence) => ({ writer: 4, sequence, size }));
  blocks.forEach((address, i) => {
    signBlock(memory.u8, address, signatures[i]!);
  });
  for (const i of free) tlsf.release(blocks[i]!);
  tlsf.check();
  const live = (): number[] => blocks.map((_, i) => i).filter((i) => !free.includes(i));
  return { ...fixture, blocks, signatures, live };
}

/** Every live block of `heap` but those in `except` still holds its signed bytes. */
function expectIntact(heap: ReturnType<typeof heapOf>, except: number[] = []): void {
  for (const i of heap.live()) {
    if (except.includes(i)) continue;
    expect(verifyBlock(heap.memory.u8, heap.blocks[i]!, heap.signatures[i]!), `block ${i}`).toBeNull();
  }
}

function expectCorruptedBy(fn: () => unknown, pattern: RegExp): void {
  const error = errorOf(fn);
  expect(error.kind).toBe('HeapCorrupted');
  expect(error.message).toMatch(pattern);
}

const state = (fixture: Fixture, offset: number): number => (fixture.ctx.stateOffset + offset) >>> 2;

describe('a damaged list head in the control state is reported, never handed out', () => {
  // 120-byte blocks (128 with the header); the second and fourth are freed, so list(128) has
  // two entries; the sixth has live neighbours, so freeing it puts it on that list.
  const setUp = (): ReturnType<typeof heapOf> & { list: number } => {
    const heap = heapOf([120, 120, 120, 120, 120, 120, 4000], [1, 3]);
    const list = listOf(128);
    expect(heap.memory.u32[state(heap, ST_LIST_HEADS + list * 4)]).toBe(heap.blocks[3]! - 8);
    return { ...heap, list };
  };

  const badHeads: [string, (heap: ReturnType<typeof setUp>) => number][] = [
    ['past the arena', (heap) => heap.ctx.arenaEnd + 4096],
    ['at the top of the address space', () => 0xffff_fff8],
    ['misaligned', (heap) => heap.blocks[1]! - 8 + 4],
    ['before the arena', (heap) => heap.ctx.arenaStart - 64],
    ['a live header', (heap) => heap.blocks[2]! - 8],
    [
      'zeros inside a live block',
      (heap) => {
        heap.memory.u8.fill(0, heap.blocks[6]! + 64, heap.blocks[6]! + 128);
        return heap.blocks[6]! + 64;
      },
    ],
    ['a free block of another list', (heap) => heap.walk.blocks().at(-1)!.address],
  ];

  for (const [name, bad] of badHeads) {
    it(`a head ${name}`, () => {
      const damagedLive = name === 'zeros inside a live block' ? [6] : [];
      const taking = setUp();
      taking.memory.u32[state(taking, ST_LIST_HEADS + taking.list * 4)] = bad(taking);
      expectCorruptedBy(() => taking.tlsf.allocate(120, 8), /headed by .* not a free block of the arena/);
      expectIntact(taking, damagedLive);

      const putting = setUp();
      putting.memory.u32[state(putting, ST_LIST_HEADS + putting.list * 4)] = bad(putting);
      expectCorruptedBy(() => putting.tlsf.release(putting.blocks[5]!), /headed by .* not a free block of the arena/);
      expectIntact(putting, [...damagedLive, 5]);
    });
  }

  it('a bitmap bit that names an empty list', () => {
    const heap = setUp();
    const empty = listOf(2048);
    expect(heap.memory.u32[state(heap, ST_LIST_HEADS + empty * 4)]).toBe(0);
    const fl = Math.floor(empty / SL_COUNT);
    heap.memory.u32[state(heap, ST_SL_BITMAPS + fl * 4)] |= 1 << (empty % SL_COUNT);
    heap.memory.u32[state(heap, ST_FL_BITMAP)] |= 1 << fl;
    expectCorruptedBy(() => heap.tlsf.allocate(1500, 8), /free list \d+ is not empty, but its head is 0/);
    expectIntact(heap);
  });
});

describe('a write after free over a free block is reported at the operation that follows its links', () => {
  it('a damaged next link of a list head', () => {
    const heap = heapOf([120, 120, 120, 120, 120], [1, 3]);
    heap.memory.u32[(heap.blocks[3]! - 8 + B_NEXT_FREE) >>> 2] = heap.blocks[4]! - 8;
    expectCorruptedBy(() => heap.tlsf.allocate(120, 8), /next link .* does not link back/);
    expectIntact(heap);
  });

  it('a damaged previous link of a block merged by a free', () => {
    const heap = heapOf([120, 120, 120, 120, 120], [1, 3]);
    heap.memory.u32[(heap.blocks[1]! - 8 + B_PREV_FREE) >>> 2] = heap.blocks[0]! - 8;
    expectCorruptedBy(() => heap.tlsf.release(heap.blocks[2]!), /previous link .* does not link back/);
    expectIntact(heap, [2]);
  });

  it('random bytes over both links', () => {
    for (let seed = 1; seed <= 32; seed++) {
      const heap = heapOf([120, 120, 120, 120, 120], [1, 3]);
      for (let i = 0; i < 8; i++) heap.memory.u8[heap.blocks[seed % 2 === 0 ? 1 : 3]! + i] = (seed * 97 + i * 31) & 0xff;
      const error = errorOf(() => {
        heap.tlsf.allocate(120, 8);
        heap.tlsf.allocate(120, 8);
        heap.tlsf.release(heap.blocks[2]!);
      });
      expect(error.kind).toBe('HeapCorrupted');
      expectIntact(heap, [2]);
    }
  });
});

describe('an overflow into a free neighbour is reported, not merged over live blocks', () => {
  it('a size grown by the overflow', () => {
    const heap = heapOf([120, 200, 120, 64], [1]);
    const free = heap.blocks[1]! - 8;
    heap.memory.u32[(free + B_SIZE) >>> 2] += 64;
    expectCorruptedBy(() => heap.tlsf.release(heap.blocks[0]!), /free block at .* header size word .* do not confirm/);
    // The block after it no longer sees it end where it starts: not a live block, refused.
    expect(errorOf(() => heap.tlsf.release(heap.blocks[2]!)).kind).toBe('NotAllocated');
    expectCorruptedBy(() => heap.tlsf.resizeInPlace(heap.blocks[0]!, 300), /free block at .* header size word .* do not confirm/);
    expectIntact(heap);
  });

  it('a size shrunk by the overflow, with its flags', () => {
    const heap = heapOf([120, 200, 120, 64], [1]);
    const free = heap.blocks[1]! - 8;
    heap.memory.u32[(free + B_SIZE) >>> 2] = 64 | 2;
    expectCorruptedBy(() => heap.tlsf.release(heap.blocks[0]!), /free block at .* header size word 0x42/);
    expectCorruptedBy(() => heap.tlsf.allocate(200, 8), /headed by .* not a free block/);
    expectIntact(heap);
  });
});

/**
 * Damage the fast checks let through, because no store of the operation goes through it;
 * checked mode catches it at the operation that touches it. Each case damages a fresh heap,
 * then runs `operation` in default mode (it passes; `check()` then finds the damage) and in
 * checked mode (it raises HeapCorrupted matching `pattern`).
 */
interface CheckedCase {
  name: string;
  damage: (heap: ReturnType<typeof heapOf>) => void;
  operation: (heap: ReturnType<typeof heapOf>, tlsf: ReturnType<typeof secondInstance>) => unknown;
  pattern: RegExp;
}

const checkedCases: CheckedCase[] = [
  {
    name: 'a free block whose prevPhys word points at the wrong block, when it is handed out',
    damage: (heap) => {
      // Block 4 heads the list of 208-byte blocks (freed last).
      heap.memory.u32[(heap.blocks[4]! - 8 + B_PREV_PHYS) >>> 2] = heap.blocks[2]! - 8;
    },
    operation: (_heap, tlsf) => tlsf.allocate(200, 8),
    pattern: /free block .* has the prevPhys word|before free block/,
  },
  {
    name: 'a second-level bit cleared under a non-empty list, when a free merges with the block it holds',
    damage: (heap) => {
      const list = listOf(208);
      const fl = Math.floor(list / SL_COUNT);
      heap.memory.u32[state(heap, ST_SL_BITMAPS + fl * 4)] &= ~(1 << (list % SL_COUNT));
    },
    operation: (heap, tlsf) => tlsf.release(heap.blocks[5]!),
    pattern: /bitmaps of free list \d+ .* disagree with its head/,
  },
  {
    name: 'a live-block count of 0, when a block is freed',
    damage: (heap) => {
      const counters = heap.ctx.counters;
      counters.restore({ ...counters.values(), liveBlocks: 0 });
    },
    operation: (heap, tlsf) => tlsf.release(heap.blocks[0]!),
    pattern: /counters .* cannot hold the block/,
  },
  {
    name: 'a live block marked free next to a free block, when the free block is handed out',
    damage: (heap) => {
      const live = heap.blocks[5]! - 8;
      heap.memory.u32[(live + B_SIZE) >>> 2] &= ~7;
    },
    operation: (_heap, tlsf) => tlsf.allocate(200, 8),
    pattern: /is followed by the free block .* \(a missed merge\)/,
  },
  {
    name: "core's pool table entry cut short, when a block beyond its new end is freed",
    damage: (heap) => {
      heap.memory.u32[poolSizeWord(0)] = heap.blocks[6]! - 8 - heap.ctx.pools.start(0);
      expect(heap.ctx.pools.end(0)).toBe(heap.blocks[6]! - 8);
    },
    operation: (heap, tlsf) => tlsf.release(heap.blocks[6]!),
    pattern: /lies in no pool/,
  },
];

describe('checked mode catches damage at the operation that touches it', () => {
  // 200-byte blocks (208 with the header); 1 and 4 are free, 4 at the head of their list.
  const sizes = [200, 200, 200, 200, 200, 200, 200, 200];
  for (const { name, damage, operation, pattern } of checkedCases) {
    it(name, () => {
      const plain = heapOf(sizes, [1, 4]);
      damage(plain);
      expect(() => operation(plain, secondInstance(plain)), 'default mode lets it pass').not.toThrow();
      expect(errorOf(() => plain.tlsf.check()).kind, 'check() finds the damage').toBe('HeapCorrupted');

      const checked = heapOf(sizes, [1, 4]);
      damage(checked);
      expectCorruptedBy(() => operation(checked, secondInstance(checked, true)), pattern);
    });
  }

  it('is on for every thread of a heap created with checked: true', () => {
    const heap = GlobalAllocator.create({ backend: tlsfBackend, heapBytes: 8 * MiB, checked: true });
    const blocks = [heap.malloc(200), heap.malloc(200), heap.malloc(200)];
    heap.free(blocks[1]!);
    const counters = new StateCounters(heap.memory);
    counters.restore({ ...counters.values(), liveBlocks: 0 });
    const error = errorOf(() => heap.free(blocks[0]!));
    expect(error).toBeInstanceOf(AllocError);
    expect(error.kind).toBe('HeapCorrupted');
    heap.detach();
  });

  it('keeps USED headers where live blocks are, so the cases above damage what they say', () => {
    const heap = heapOf(sizes, [1, 4]);
    expect(heap.memory.u32[(heap.blocks[2]! - 8 + B_SIZE) >>> 2]! & USED).toBe(USED);
    expect(heap.memory.u32[(heap.blocks[1]! - 8 + B_SIZE) >>> 2]! & USED).toBe(0);
  });
});

describe("an overflow into an over-aligned block's trailer", () => {
  it('is reported by the calls that read the trailer, and recover() rewrites it so the heap works again', () => {
    const fixture = makeTlsf(8 * MiB, 1 * MiB);
    const { tlsf, memory } = fixture;
    const aligned = tlsf.allocate(100, 4096);
    const other = tlsf.allocate(100, 8);
    const usable = tlsf.usableSize(aligned);
    expect(usable).toBe(104);
    // One byte past the usable end: the trailer's reserved word is hit, nothing else.
    memory.u8[aligned + usable] ^= 0xff;
    tlsf.check();
    // Five bytes past it: the trailer word itself.
    memory.u8[aligned + usable + 4] ^= 0x5a;
    expectCorruptedBy(() => tlsf.release(aligned), /alignment trailer .* is damaged/);
    expectCorruptedBy(() => tlsf.blockLayout(aligned), /alignment trailer .* is damaged/);
    expectCorruptedBy(() => tlsf.check(), /damaged trailer/);
    const repair = tlsf.recover({ lock: 'heap', deadThreadId: 2 });
    expect(repair.notes.join('\n')).toMatch(/damaged alignment trailer of the block .* was rewritten/);
    expect(tlsf.blockLayout(aligned)).toMatchObject({ minSize: 104, maxAlign: 4096 });
    tlsf.release(aligned);
    tlsf.release(other);
    expect(tlsf.check()).toMatchObject({ liveBlocks: 0, freeBlocks: 1 });
  });
});
