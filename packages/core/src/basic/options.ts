/**
 * The basic backend's options: one, the placement strategy. Listed once, as specs; core
 * checks them (`defineBackend` in backend/index.ts).
 */

import type { BackendOptionSpec } from '../backend/contract.js';

/** The placement strategies of the basic backend, in the order `heaplab backends` lists them. */
export const BASIC_STRATEGIES = ['first-fit', 'best-fit', 'worst-fit'] as const;

/** One of `BASIC_STRATEGIES`. */
export type BasicStrategy = (typeof BASIC_STRATEGIES)[number];

/** The basic backend's normalised options. */
export interface BasicOptions {
  /**
   * Which free block a request takes: `first-fit` the lowest-addressed that fits, `best-fit`
   * the smallest (lowest address among equals), `worst-fit` the largest (likewise).
   */
  strategy: BasicStrategy;
}

export const BASIC_OPTIONS: readonly BackendOptionSpec[] = [
  {
    name: 'strategy',
    description: 'which free block a request takes: first-fit the lowest-addressed that fits, best-fit the smallest, worst-fit the largest',
    kind: 'enum',
    values: BASIC_STRATEGIES,
    default: 'first-fit',
    variant: true,
  },
];
