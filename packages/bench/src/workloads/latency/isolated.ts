/**
 * Measuring one (contender, level) of the latency workload in a process of its own, as the
 * other workloads run their one-thread rows (see run/isolated-run.ts): in one process every
 * contender's calls go through the same call sites, which V8 compiles for all the
 * allocators it has seen, so a row's nanoseconds would depend on the rows before it. The
 * child (child.ts) calibrates its own clock and replies with the rows.
 */

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { loadedBackendModules } from '@heaplab/core';

import type { Contender } from '../../contenders/contender.js';
import type { BenchSettings } from '../../run/workload.js';
import type { LatencyLevel } from './measure.js';
import { type LatencyRow, WARMUP_SHARE } from './rows.js';

/**
 * What the parent sends: the measurement as data (the contender crosses as it is), and the
 * URLs of the backend modules from outside heaplab that the child loads first (default: those
 * this process loaded).
 */
export interface IsolatedLevelRequest {
  contender: Contender;
  level: LatencyLevel;
  settings: BenchSettings;
  backendModules?: readonly string[];
}

/** The child's one message back. */
export type IsolatedLevelReply = { ok: true; rows: LatencyRow[] } | { ok: false; message: string };

const fromSource = import.meta.url.endsWith('.ts');

/** How long past its timed runs a child may take before it is killed: start-up, heaps, pre-faulting. */
const GRACE_SECONDS = 60;

/**
 * Runs `request` in a child process and resolves with its rows.
 * @throws Error with the child's message when the measurement fails there, when the child
 *   exits without replying, or when it was killed for taking too long
 */
export function measureLevelIsolated(request: IsolatedLevelRequest): Promise<LatencyRow[]> {
  // From source (tests, tsx) the child is this folder's child.ts, loaded through tsx; built,
  // it is the bundle's `latency-child.js` entry, beside the chunk this code is in.
  const entry = fileURLToPath(new URL(fromSource ? './child.ts' : './latency-child.js', import.meta.url));
  const execArgv = fromSource ? ['--conditions=heaplab-source', '--import', 'tsx'] : [];
  const child = fork(entry, [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { settings } = request;
  const limitSeconds = settings.durationSeconds * (Math.max(1, settings.repeat) + (settings.warmup ? WARMUP_SHARE : 0)) + GRACE_SECONDS;
  return new Promise<LatencyRow[]>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      if (watchdog !== null) clearTimeout(watchdog);
      outcome();
    };
    const fail = (message: string): void => {
      settle(() => reject(new Error(message)));
      if (child.exitCode === null && child.signalCode === null) child.kill();
    };
    // setTimeout fires at once for a delay beyond 2^31 - 1 ms; a run bounded by steps only has no limit.
    const watchdog =
      limitSeconds * 1000 <= 2 ** 31 - 1
        ? setTimeout(() => fail(`the latency process took longer than ${Math.round(limitSeconds)} s and was killed`), limitSeconds * 1000)
        : null;
    child.once('message', (reply: IsolatedLevelReply) => settle(() => (reply.ok ? resolve(reply.rows) : reject(new Error(reply.message)))));
    child.once('error', (error) => fail(`the latency process failed: ${error.message}`));
    child.once('exit', (code, signal) => fail(`the latency process exited (${signal ?? `code ${code}`}) before replying`));
    child.send({ ...request, backendModules: request.backendModules ?? loadedBackendModules() } satisfies IsolatedLevelRequest);
  });
}
