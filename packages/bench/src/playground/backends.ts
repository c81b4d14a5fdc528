/**
 * The backends a person can pick in the playground, and the descriptors the page and its web
 * workers make and attach heaps with. The page and every worker import this module, so each
 * has the same descriptors at hand and passes them to `attach` (`backends: [descriptor]`):
 * nothing is imported by a URL stored in the heap, which in a bundle would name the bundle.
 */

import { type AnyBackendDescriptor, basicBackend } from '@heaplab/core';
import { buddyBackend } from '@heaplab/buddy';
import { mimallocBackend } from '@heaplab/mimalloc';
import { slabBackend } from '@heaplab/slab';
import { tlsfBackend } from '@heaplab/tlsf';

/** One entry of the backend pickers: a backend with fixed options. */
export interface BackendChoice {
  /** What the picker shows and the panel is titled with, in `heaplab --backend` spelling. */
  label: string;
  descriptor: AnyBackendDescriptor;
  options: Record<string, unknown>;
}

/** Every choice, in the order the pickers list them. */
export const BACKEND_CHOICES: readonly BackendChoice[] = [
  { label: 'tlsf', descriptor: tlsfBackend, options: {} },
  { label: 'tlsf:tcache=false', descriptor: tlsfBackend, options: { tcache: false } },
  { label: 'mimalloc', descriptor: mimallocBackend, options: {} },
  { label: 'buddy', descriptor: buddyBackend, options: {} },
  { label: 'slab', descriptor: slabBackend, options: {} },
  { label: 'basic', descriptor: basicBackend, options: {} },
  { label: 'basic:strategy=best-fit', descriptor: basicBackend, options: { strategy: 'best-fit' } },
];

/** The descriptors, once each: what a worker passes to `attach`. */
export const DESCRIPTORS: readonly AnyBackendDescriptor[] = [...new Set(BACKEND_CHOICES.map((choice) => choice.descriptor))];

/** The choice labelled `label`. @throws Error for a label no picker offers */
export function choiceOf(label: string): BackendChoice {
  const choice = BACKEND_CHOICES.find((candidate) => candidate.label === label);
  if (choice === undefined) throw new Error(`no backend choice '${label}'`);
  return choice;
}
