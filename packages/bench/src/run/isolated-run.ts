/**
 * Running a one-thread row in a process of its own, as mimalloc-bench runs every allocator
 * and test as its own program. In one process, every contender's loop runs through the same
 * functions, and V8 optimizes them for all the allocators it has seen (the allocator call
 * sites become polymorphic), so a row's figure would depend on the rows before it. A fresh
 * process gives each row the JIT state it would have alone; its loop still runs in the
 * calling thread of that process, as bench-malloc-thread's does with one thread.
 */

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { loadedBackendModules } from '@heaplab/core';

import type { ThreadedRun, ThreadedRunOptions } from './threaded-run.js';

/**
 * What the parent sends: the run as data. The loop is named by its workload, since functions
 * do not cross processes; the contender, its backend spec included, crosses as it is. The
 * child has a registry of its own: `backendModules` are the URLs of the backend modules from
 * outside heaplab it loads first (default: those this process loaded, `loadedBackendModules()`).
 */
export type IsolatedRunRequest = Omit<ThreadedRunOptions, 'loop'> & { workload: string; backendModules?: readonly string[] };

/** The child's one message back. */
export type IsolatedRunReply = { ok: true; run: ThreadedRun } | { ok: false; message: string };

const fromSource = import.meta.url.endsWith('.ts');

/**
 * How long past its duration a timed run may take before its process is killed: start-up,
 * heap set-up and pre-faulting, and the verified run's final checks, with room to spare.
 */
export const ISOLATED_RUN_GRACE_SECONDS = 60;

/**
 * Runs `request` (one thread) in a child process and resolves with its figures. A timed run
 * whose process has not replied `graceSeconds` after its duration is killed; a run bounded
 * by iterations only (or timed beyond 24 days) has no such limit.
 * @throws Error with the child's message when the run fails there, when the child exits
 *   without replying, or when it was killed for taking too long
 */
export function runThreadedIsolated(request: IsolatedRunRequest, graceSeconds = ISOLATED_RUN_GRACE_SECONDS): Promise<ThreadedRun> {
  const entry = fileURLToPath(new URL(fromSource ? './isolated-child.ts' : './isolated-child.js', import.meta.url));
  // From source (tests, tsx), the child loads TypeScript through tsx and resolves the
  // workspace packages to their src/ by the `heaplab-source` export condition, as the tests do.
  const execArgv = fromSource ? ['--conditions=heaplab-source', '--import', 'tsx'] : [];
  const child = fork(entry, [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise<ThreadedRun>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      if (watchdog !== null) clearTimeout(watchdog);
      outcome();
    };
    const fail = (message: string): void => {
      settle(() => reject(new Error(message)));
      // A process that cannot reply must not outlive the run, nor keep this one waiting.
      if (child.exitCode === null && child.signalCode === null) child.kill();
    };
    const limitSeconds = request.durationSeconds + graceSeconds;
    // setTimeout fires at once for a delay beyond 2^31 - 1 ms (about 24.8 days).
    const watchdog =
      limitSeconds * 1000 <= 2 ** 31 - 1
        ? setTimeout(() => fail(`the benchmark process took longer than ${limitSeconds} s and was killed`), limitSeconds * 1000)
        : null;
    child.once('message', (reply: IsolatedRunReply) => {
      settle(() => (reply.ok ? resolve(reply.run) : reject(new Error(reply.message))));
    });
    child.once('error', (error) => fail(`the benchmark process failed: ${error.message}`));
    child.once('exit', (code, signal) => fail(`the benchmark process exited (${signal ?? `code ${code}`}) before replying`));
    child.send({ ...request, backendModules: request.backendModules ?? loadedBackendModules() } satisfies IsolatedRunRequest);
  });
}
