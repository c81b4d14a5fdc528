/**
 * The test file `heaplab grade` runs: the conformance and multi-worker suites on every
 * backend of the modules named in `HEAPLAB_GRADE_MODULES` (see grade.ts), each with its
 * default options. A module that cannot be loaded, or a backend name that none of them
 * exports, fails the file with that message, which grade shows as the first error.
 */

import { type BackendDescriptor, loadBackendModule } from '@heaplab/core';

import { describeConformance } from './conformance.js';
import { GRADE_BACKENDS_VARIABLE, GRADE_FROM_VARIABLE, GRADE_MODULES_VARIABLE } from './grade.js';
import { describeMultiWorker } from './multi-worker.js';

function listFrom(variable: string): string[] {
  const text = process.env[variable];
  if (text === undefined || text === '') return [];
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new Error(`${variable} must be a JSON array of strings, not ${text}`);
  }
  return value;
}

const modules = listFrom(GRADE_MODULES_VARIABLE);
if (modules.length === 0) throw new Error(`${GRADE_MODULES_VARIABLE} names no backend module: run this file through heaplab grade`);
const from = process.env[GRADE_FROM_VARIABLE];
const descriptors: BackendDescriptor[] = [];
for (const module of modules) {
  descriptors.push(...(await loadBackendModule(module, from === undefined ? {} : { from })));
}
const wanted = listFrom(GRADE_BACKENDS_VARIABLE);
const missing = wanted.filter((name) => !descriptors.some((descriptor) => descriptor.name === name));
if (missing.length > 0) {
  throw new Error(
    `no module exports a backend named ${missing.map((name) => `'${name}'`).join(', ')} (they export ${descriptors.map((d) => d.name).join(', ')})`,
  );
}
for (const descriptor of descriptors) {
  if (wanted.length > 0 && !wanted.includes(descriptor.name)) continue;
  describeConformance({ label: descriptor.name, backend: descriptor });
  describeMultiWorker({ label: descriptor.name, backend: descriptor });
}
