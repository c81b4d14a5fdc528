/**
 * Binary trees: each round builds a tree depth-first, one node block (with a small payload
 * block beside some) per node, then tears it down in post-order, as a program's parse or
 * search tree lives and dies. Node blocks are all one size, payloads vary; rounds differ in
 * depth, so the heap sees the same shape grown and cut down at several scales.
 */

import { Random, type Trace } from '@heaplab/core';

import { TraceBuilder } from '../trace-builder.js';

const NODE_BYTES = 48;
const DEPTHS = [9, 10, 8, 10];

export function binaryTree(seed: number, description: string): Trace {
  const random = new Random(seed);
  const builder = new TraceBuilder();
  const build = (depth: number): number[] => {
    const node = builder.alloc(NODE_BYTES);
    const payload = random.int(0, 3) === 0 ? [builder.alloc(random.int(8, 300))] : [];
    const children = depth === 0 ? [] : [...build(depth - 1), ...build(depth - 1)];
    // Post-order: children first, then the payload, then the node.
    return [...children, ...payload, node];
  };
  for (const depth of DEPTHS) {
    for (const id of build(depth)) builder.free(id);
  }
  return builder.build(description);
}
