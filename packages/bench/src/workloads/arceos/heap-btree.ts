/**
 * Rust's `BTreeMap<String, usize>` as the ArceOS test drives it, with every node and key in
 * the heap under test: the same node sizes and layout on 64-bit (a leaf of 368 bytes, an
 * internal node of 464), the same split points on insertion, the same merges and steals
 * when `pop_first` leaves a node short, and the same allocation and free order (a split
 * allocates the new right node before its parent's split and a new root; a merge frees the
 * right node; an emptied internal root is freed after the rebalancing, and the popped key
 * after that). Keys are made as `format!("key_{value}")` makes them: an 8-byte buffer for
 * "key_", then a `realloc` to `max(16, 4 + digits)` for the digits.
 *
 * Only what `test_btree_map` calls is here: insert, pop_first, iteration and drop. Removal
 * happens on the leftmost path only, so a short node always balances with its right
 * sibling (Rust prefers the left one, which the leftmost node does not have).
 */

import type { AddressAllocator, LoopMemory } from '../../run/address-allocator.js';
import { allocateOrThrow } from './heap-vec.js';

/** Rust's `B`: a node holds up to `2B - 1` keys; one not the root, at least `B - 1`. */
const B = 6;
const CAPACITY = 2 * B - 1;
const MIN_LENGTH = B - 1;

// A node (`LeafNode<String, usize>`, then `InternalNode`'s edges), byte offsets. The parent
// index (u16) and the length (u16) share the 32-bit word at 8.
const NODE_PARENT = 0;
const NODE_PARENT_INDEX_AND_LENGTH = 8;
const NODE_KEYS = 16;
/** A `String`: pointer at 0, capacity at 8, length at 16 (each a u64; heap addresses fit the low word). */
const KEY_BYTES = 24;
const NODE_VALUES = NODE_KEYS + CAPACITY * KEY_BYTES;
const VALUE_BYTES = 8;
/** `size_of::<LeafNode<String, usize>>()`. */
export const LEAF_NODE_BYTES = NODE_VALUES + CAPACITY * VALUE_BYTES;
const NODE_EDGES = LEAF_NODE_BYTES;
const EDGE_BYTES = 8;
/** `size_of::<InternalNode<String, usize>>()`. */
export const INTERNAL_NODE_BYTES = NODE_EDGES + (CAPACITY + 1) * EDGE_BYTES;

// A key-value pair held outside the tree while it moves (32-bit words): the key's three
// fields, then the value.
const PAIR_KEY_ADDRESS = 0;
const PAIR_KEY_CAPACITY = 2;
const PAIR_VALUE_LOW = 6;
const PAIR_VALUE_HIGH = 7;
const PAIR_WORDS = 8;

/** "key_" as bytes: every key's prefix. */
const KEY_PREFIX = [0x6b, 0x65, 0x79, 0x5f];
/** `format!` starts the string with room for twice its literal pieces: 2 x "key_". */
const FORMAT_FIRST_CAPACITY = 2 * KEY_PREFIX.length;
/** The longest key: "key_" and the 20 digits of 2^64 - 1. */
const MAX_KEY_BYTES = KEY_PREFIX.length + 20;

/**
 * Where a full node splits for an insertion at edge `edgeIndex` (Rust's `splitpoint`): the
 * index of the pair that moves up, and the side and index where the new pair then goes.
 */
function splitPoint(edgeIndex: number): { middle: number; left: boolean; index: number } {
  if (edgeIndex < B - 1) return { middle: B - 2, left: true, index: edgeIndex };
  if (edgeIndex === B - 1) return { middle: B - 1, left: true, index: edgeIndex };
  if (edgeIndex === B) return { middle: B - 1, left: false, index: 0 };
  return { middle: B, left: false, index: edgeIndex - (B + 1) };
}

/** The decimal digits of the u64 `high * 2^32 + low`. */
export function u64Decimal(high: number, low: number): string {
  return high === 0 ? String(low) : ((BigInt(high) << 32n) | BigInt(low)).toString();
}

/** A `BTreeMap<String, usize>` in the heap. */
export class HeapBTree {
  /** The root node; 0 before the first insertion (an empty map has no node). */
  private root = 0;
  /** Edges from the root down to a leaf. */
  private height = 0;
  /** Pairs in the map. */
  length = 0;
  leafNodes = 0;
  internalNodes = 0;
  /** Sum of the live keys' capacities: what the keys asked the heap for. */
  keyBytes = 0;

  private readonly u8: Uint8Array;
  private readonly u32: Uint32Array;
  /** The key being inserted, for comparisons without reading it back from the heap. */
  private readonly probe = new Uint8Array(MAX_KEY_BYTES);
  private probeLength = 0;
  private carried = new Uint32Array(PAIR_WORDS);
  private raised = new Uint32Array(PAIR_WORDS);

  constructor(
    private readonly heap: AddressAllocator,
    memory: LoopMemory,
  ) {
    this.u8 = memory.u8;
    this.u32 = memory.u32;
  }

  /** Bytes the map asked the heap for: its nodes and its keys. */
  get requestedBytes(): number {
    return this.leafNodes * LEAF_NODE_BYTES + this.internalNodes * INTERNAL_NODE_BYTES + this.keyBytes;
  }

  /**
   * `map.insert(format!("key_{value}"), value)` for the u64 `value`. An existing key keeps
   * its place and takes the new value; the new key is then freed, as Rust drops it.
   * @returns whether the key was new
   * @throws Error when the heap has no room
   */
  insertFormatted(valueHigh: number, valueLow: number): boolean {
    const pair = this.carried;
    this.formatKey(valueHigh, valueLow, pair);
    pair[PAIR_VALUE_LOW] = valueLow;
    pair[PAIR_VALUE_HIGH] = valueHigh;
    if (this.root === 0) {
      this.root = this.newNode(0);
      this.height = 0;
    }
    let node = this.root;
    let height = this.height;
    let index: number;
    for (;;) {
      const length = this.lengthOf(node);
      index = 0;
      while (index < length) {
        const order = this.compareProbe(node, index);
        if (order < 0) break;
        if (order === 0) {
          const value = (node + NODE_VALUES + index * VALUE_BYTES) >>> 2;
          this.u32[value] = valueLow;
          this.u32[value + 1] = valueHigh;
          this.heap.free(pair[PAIR_KEY_ADDRESS]!);
          this.keyBytes -= pair[PAIR_KEY_CAPACITY]!;
          return false;
        }
        index++;
      }
      if (height === 0) break;
      node = this.edge(node, index);
      height--;
    }
    this.insertRecursing(node, index);
    this.length++;
    return true;
  }

  /**
   * `map.pop_first()`, its pair dropped: the first key leaves its leaf, short nodes on the
   * leftmost path merge with or steal from their right siblings, an emptied internal root
   * goes, and then the key is freed.
   * @returns whether there was a pair to pop
   */
  popFirst(): boolean {
    if (this.length === 0) return false;
    let leaf = this.root;
    for (let height = this.height; height > 0; height--) leaf = this.edge(leaf, 0);
    const popped = this.carried;
    this.readPair(leaf, 0, popped);
    const leafLength = this.lengthOf(leaf) - 1;
    this.movePairs(leaf, 1, leaf, 0, leafLength);
    this.setLength(leaf, leafLength);
    if (leafLength < MIN_LENGTH && leaf !== this.root) {
      let parent = this.parentOf(leaf);
      this.balanceWithRight(parent, 0);
      for (let height = 1; ; height++) {
        const length = this.lengthOf(parent);
        if (length >= MIN_LENGTH) break;
        if (parent === this.root) {
          if (length === 0) this.popInternalLevel();
          break;
        }
        const grandparent = this.parentOf(parent);
        if (!this.balanceWithRight(grandparent, height)) break;
        parent = grandparent;
      }
    }
    this.heap.free(popped[PAIR_KEY_ADDRESS]!);
    this.keyBytes -= popped[PAIR_KEY_CAPACITY]!;
    this.length--;
    return true;
  }

  /**
   * Walks the map in order, as `m.iter()` does, checking every key against its value (the
   * original's assertion) and the order of the keys.
   * @returns the pairs walked
   * @throws Error naming the first key that does not hold its value or is out of order
   */
  verify(): number {
    let previous = -1;
    let walked = 0;
    const visit = (node: number, height: number): void => {
      const length = this.lengthOf(node);
      for (let index = 0; index <= length; index++) {
        if (height > 0) visit(this.edge(node, index), height - 1);
        if (index === length) break;
        const slot = (node + NODE_KEYS + index * KEY_BYTES) >>> 2;
        const value = (node + NODE_VALUES + index * VALUE_BYTES) >>> 2;
        const expected = `key_${u64Decimal(this.u32[value + 1]!, this.u32[value]!)}`;
        const key = this.keyText(slot);
        if (key !== expected) throw new Error(`the map holds the value of '${expected}' under '${key}'`);
        if (previous !== -1 && this.compareSlots(previous, slot) >= 0) throw new Error(`key '${key}' is not above the key before it`);
        previous = slot;
        walked++;
      }
    };
    if (this.root !== 0) visit(this.root, this.height);
    if (walked !== this.length) throw new Error(`the walk met ${walked} pairs, the map counts ${this.length}`);
    return walked;
  }

  /** Drops the map: every key in order, each node after its last key and edge, as Rust's drop frees them. */
  drop(): void {
    const free = (node: number, height: number): void => {
      const length = this.lengthOf(node);
      for (let index = 0; index <= length; index++) {
        if (height > 0) free(this.edge(node, index), height - 1);
        if (index === length) break;
        const slot = (node + NODE_KEYS + index * KEY_BYTES) >>> 2;
        this.heap.free(this.u32[slot]!);
        this.keyBytes -= this.u32[slot + 2]!;
      }
      this.heap.free(node);
      if (height > 0) this.internalNodes--;
      else this.leafNodes--;
    };
    if (this.root !== 0) free(this.root, this.height);
    this.root = 0;
    this.height = 0;
    this.length = 0;
  }

  // --- insertion -------------------------------------------------------------------------

  /** Makes the key `format!` makes into `pair`'s key fields, and into `probe`. */
  private formatKey(valueHigh: number, valueLow: number, pair: Uint32Array): void {
    const digits = u64Decimal(valueHigh, valueLow);
    const length = KEY_PREFIX.length + digits.length;
    let address = allocateOrThrow(this.heap, FORMAT_FIRST_CAPACITY);
    let capacity = FORMAT_FIRST_CAPACITY;
    const u8 = this.u8;
    const probe = this.probe;
    for (let at = 0; at < KEY_PREFIX.length; at++) u8[address + at] = probe[at] = KEY_PREFIX[at]!;
    if (length > capacity) {
      // The digits come in one write; `String` grows to at least twice its capacity.
      capacity = Math.max(2 * capacity, length);
      address = this.heap.realloc(address, capacity);
      if (address === 0) throw new Error(`realloc of a key to ${capacity} bytes failed: the heap has no room`);
    }
    for (let at = 0; at < digits.length; at++) u8[address + KEY_PREFIX.length + at] = probe[KEY_PREFIX.length + at] = digits.charCodeAt(at);
    this.probeLength = length;
    pair.fill(0);
    pair[PAIR_KEY_ADDRESS] = address;
    pair[PAIR_KEY_CAPACITY] = capacity;
    pair[PAIR_KEY_CAPACITY + 2] = length;
    this.keyBytes += capacity;
  }

  /**
   * Inserts the carried pair at edge `index` of `node` (a leaf), splitting full nodes up the
   * tree as Rust's `insert_recursing` does, and growing a new root when the root splits.
   */
  private insertRecursing(leaf: number, edgeIndex: number): void {
    let node = leaf;
    let index = edgeIndex;
    let height = 0;
    let rightEdge = 0;
    for (;;) {
      const length = this.lengthOf(node);
      if (length < CAPACITY) {
        this.insertFit(node, height, index, this.carried, rightEdge);
        return;
      }
      const split = splitPoint(index);
      const right = this.newNode(height);
      const rightLength = length - split.middle - 1;
      this.readPair(node, split.middle, this.raised);
      this.movePairs(node, split.middle + 1, right, 0, rightLength);
      if (height > 0) this.moveEdges(node, split.middle + 1, right, 0, rightLength + 1);
      this.setLength(node, split.middle);
      this.setLength(right, rightLength);
      if (height > 0) this.correctParentLinks(right, 0, rightLength);
      this.insertFit(split.left ? node : right, height, split.index, this.carried, rightEdge);
      // The middle pair and the new right node go up a level.
      const carried = this.carried;
      this.carried = this.raised;
      this.raised = carried;
      rightEdge = right;
      if (node === this.root) {
        const root = this.newNode(height + 1);
        this.setEdge(root, 0, node);
        this.setParent(node, root, 0);
        this.writePair(root, 0, this.carried);
        this.setEdge(root, 1, right);
        this.setParent(right, root, 1);
        this.setLength(root, 1);
        this.root = root;
        this.height++;
        return;
      }
      index = this.parentIndexOf(node);
      node = this.parentOf(node);
      height++;
    }
  }

  /** Inserts `pair` (and, in an internal node, `rightEdge` after it) at `index` of a node with room. */
  private insertFit(node: number, height: number, index: number, pair: Uint32Array, rightEdge: number): void {
    const length = this.lengthOf(node);
    this.movePairs(node, index, node, index + 1, length - index);
    this.writePair(node, index, pair);
    if (height > 0) {
      this.moveEdges(node, index + 1, node, index + 2, length - index);
      this.setEdge(node, index + 1, rightEdge);
    }
    this.setLength(node, length + 1);
    if (height > 0) this.correctParentLinks(node, index + 1, length + 1);
  }

  // --- removal ---------------------------------------------------------------------------

  /**
   * Balances the first two children of `parent` (nodes `childHeight` edges above the leaves),
   * the first of which is short: merges them when they fit in one node, else moves pairs
   * from the second until the first has `MIN_LENGTH`.
   * @returns whether they merged (the parent then lost a pair and may be short itself)
   */
  private balanceWithRight(parent: number, childHeight: number): boolean {
    const left = this.edge(parent, 0);
    const right = this.edge(parent, 1);
    if (this.lengthOf(left) + 1 + this.lengthOf(right) <= CAPACITY) {
      this.merge(parent, left, right, childHeight);
      return true;
    }
    this.stealFromRight(parent, left, right, MIN_LENGTH - this.lengthOf(left), childHeight);
    return false;
  }

  /** Moves pair 0 of `parent` and all of `right` into `left`, drops `right`'s edge from the parent, frees `right`. */
  private merge(parent: number, left: number, right: number, childHeight: number): void {
    const leftLength = this.lengthOf(left);
    const rightLength = this.lengthOf(right);
    const parentLength = this.lengthOf(parent);
    const merged = leftLength + 1 + rightLength;
    this.setLength(left, merged);
    this.readPair(parent, 0, this.raised);
    this.movePairs(parent, 1, parent, 0, parentLength - 1);
    this.writePair(left, leftLength, this.raised);
    this.movePairs(right, 0, left, leftLength + 1, rightLength);
    this.moveEdges(parent, 2, parent, 1, parentLength - 1);
    this.correctParentLinks(parent, 1, parentLength - 1);
    this.setLength(parent, parentLength - 1);
    if (childHeight > 0) {
      this.moveEdges(right, 0, left, leftLength + 1, rightLength + 1);
      this.correctParentLinks(left, leftLength + 1, merged);
    }
    this.freeNode(right, childHeight);
  }

  /** Rust's `bulk_steal_right(count)`: `count` pairs (and edges) rotate from `right` through the parent into `left`. */
  private stealFromRight(parent: number, left: number, right: number, count: number, childHeight: number): void {
    const leftLength = this.lengthOf(left);
    const rightLength = this.lengthOf(right);
    this.setLength(left, leftLength + count);
    this.setLength(right, rightLength - count);
    this.readPair(parent, 0, this.raised);
    this.writePair(left, leftLength, this.raised);
    this.readPair(right, count - 1, this.raised);
    this.writePair(parent, 0, this.raised);
    this.movePairs(right, 0, left, leftLength + 1, count - 1);
    this.movePairs(right, count, right, 0, rightLength - count);
    if (childHeight > 0) {
      this.moveEdges(right, 0, left, leftLength + 1, count);
      this.moveEdges(right, count, right, 0, rightLength - count + 1);
      this.correctParentLinks(left, leftLength + 1, leftLength + count);
      this.correctParentLinks(right, 0, rightLength - count);
    }
  }

  /** The root (an internal node with no pair left) gives way to its only child. */
  private popInternalLevel(): void {
    const old = this.root;
    this.root = this.edge(old, 0);
    this.height--;
    this.setParent(this.root, 0, 0);
    this.freeNode(old, this.height + 1);
  }

  // --- nodes -----------------------------------------------------------------------------

  private newNode(height: number): number {
    const node = allocateOrThrow(this.heap, height > 0 ? INTERNAL_NODE_BYTES : LEAF_NODE_BYTES);
    const word = node >>> 2;
    this.u32[word + NODE_PARENT / 4] = 0;
    this.u32[word + NODE_PARENT / 4 + 1] = 0;
    this.u32[word + NODE_PARENT_INDEX_AND_LENGTH / 4] = 0;
    if (height > 0) this.internalNodes++;
    else this.leafNodes++;
    return node;
  }

  private freeNode(node: number, height: number): void {
    this.heap.free(node);
    if (height > 0) this.internalNodes--;
    else this.leafNodes--;
  }

  private lengthOf(node: number): number {
    return this.u32[(node + NODE_PARENT_INDEX_AND_LENGTH) >>> 2]! >>> 16;
  }

  private setLength(node: number, length: number): void {
    const word = (node + NODE_PARENT_INDEX_AND_LENGTH) >>> 2;
    this.u32[word] = ((this.u32[word]! & 0xffff) | (length << 16)) >>> 0;
  }

  private parentOf(node: number): number {
    return this.u32[(node + NODE_PARENT) >>> 2]!;
  }

  private parentIndexOf(node: number): number {
    return this.u32[(node + NODE_PARENT_INDEX_AND_LENGTH) >>> 2]! & 0xffff;
  }

  private setParent(node: number, parent: number, index: number): void {
    const word = node >>> 2;
    this.u32[word + NODE_PARENT / 4] = parent;
    const shared = word + NODE_PARENT_INDEX_AND_LENGTH / 4;
    this.u32[shared] = ((this.u32[shared]! & 0xffff_0000) | index) >>> 0;
  }

  private edge(node: number, index: number): number {
    return this.u32[(node + NODE_EDGES + index * EDGE_BYTES) >>> 2]!;
  }

  private setEdge(node: number, index: number, child: number): void {
    const word = (node + NODE_EDGES + index * EDGE_BYTES) >>> 2;
    this.u32[word] = child;
    this.u32[word + 1] = 0;
  }

  /** Points edges `from..=to` of `node` back at it, as Rust's `correct_childrens_parent_links`. */
  private correctParentLinks(node: number, from: number, to: number): void {
    for (let index = from; index <= to; index++) this.setParent(this.edge(node, index), node, index);
  }

  /** Moves `count` pairs (keys and values apart, as Rust's slices are) with memmove semantics. */
  private movePairs(from: number, fromIndex: number, to: number, toIndex: number, count: number): void {
    if (count <= 0) return;
    const keys = from + NODE_KEYS + fromIndex * KEY_BYTES;
    this.u8.copyWithin(to + NODE_KEYS + toIndex * KEY_BYTES, keys, keys + count * KEY_BYTES);
    const values = from + NODE_VALUES + fromIndex * VALUE_BYTES;
    this.u8.copyWithin(to + NODE_VALUES + toIndex * VALUE_BYTES, values, values + count * VALUE_BYTES);
  }

  private moveEdges(from: number, fromIndex: number, to: number, toIndex: number, count: number): void {
    if (count <= 0) return;
    const edges = from + NODE_EDGES + fromIndex * EDGE_BYTES;
    this.u8.copyWithin(to + NODE_EDGES + toIndex * EDGE_BYTES, edges, edges + count * EDGE_BYTES);
  }

  private readPair(node: number, index: number, pair: Uint32Array): void {
    const key = (node + NODE_KEYS + index * KEY_BYTES) >>> 2;
    for (let word = 0; word < KEY_BYTES / 4; word++) pair[word] = this.u32[key + word]!;
    const value = (node + NODE_VALUES + index * VALUE_BYTES) >>> 2;
    pair[PAIR_VALUE_LOW] = this.u32[value]!;
    pair[PAIR_VALUE_HIGH] = this.u32[value + 1]!;
  }

  private writePair(node: number, index: number, pair: Uint32Array): void {
    const key = (node + NODE_KEYS + index * KEY_BYTES) >>> 2;
    for (let word = 0; word < KEY_BYTES / 4; word++) this.u32[key + word] = pair[word]!;
    const value = (node + NODE_VALUES + index * VALUE_BYTES) >>> 2;
    this.u32[value] = pair[PAIR_VALUE_LOW]!;
    this.u32[value + 1] = pair[PAIR_VALUE_HIGH]!;
  }

  // --- keys ------------------------------------------------------------------------------

  /** The key being inserted against key `index` of `node`, bytewise as `String`'s `Ord`. */
  private compareProbe(node: number, index: number): number {
    const slot = (node + NODE_KEYS + index * KEY_BYTES) >>> 2;
    const address = this.u32[slot]!;
    const length = this.u32[slot + 4]!;
    const common = Math.min(length, this.probeLength);
    const u8 = this.u8;
    const probe = this.probe;
    for (let at = 0; at < common; at++) {
      const difference = probe[at]! - u8[address + at]!;
      if (difference !== 0) return difference;
    }
    return this.probeLength - length;
  }

  /** Two keys in the tree, by their slots' word indices. */
  private compareSlots(first: number, second: number): number {
    const a = this.u32[first]!;
    const b = this.u32[second]!;
    const aLength = this.u32[first + 4]!;
    const bLength = this.u32[second + 4]!;
    const common = Math.min(aLength, bLength);
    for (let at = 0; at < common; at++) {
      const difference = this.u8[a + at]! - this.u8[b + at]!;
      if (difference !== 0) return difference;
    }
    return aLength - bLength;
  }

  private keyText(slot: number): string {
    const address = this.u32[slot]!;
    return String.fromCharCode(...this.u8.subarray(address, address + this.u32[slot + 4]!));
  }
}
