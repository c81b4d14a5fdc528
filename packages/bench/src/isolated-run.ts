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

import type { ThreadedRun, ThreadedRunOptions } from './threaded-run.js';

/** What the parent sends: the run without its tables, which the child builds itself. */
export type IsolatedRunRequest = Omit<ThreadedRunOptions, 'tablesBuffer'>;

/** The child's one message back. */
export type IsolatedRunReply = { ok: true; run: ThreadedRun } | { ok: false; message: string };

const fromSource = import.meta.url.endsWith('.ts');

/**
 * Runs `request` (one thread) in a child process and resolves with its figures.
 * @throws Error with the child's message when the run fails there, or when the child exits
 *   without replying
 */
export function runThreadedIsolated(request: IsolatedRunRequest): Promise<ThreadedRun> {
  const entry = fileURLToPath(new URL(fromSource ? './run-child.ts' : './run-child.js', import.meta.url));
  // From source (tests, tsx), the child loads TypeScript through tsx and resolves the
  // workspace packages to their src/ by the `source` export condition, as the tests do.
  const execArgv = fromSource ? ['--conditions=source', '--import', 'tsx'] : [];
  const child = fork(entry, [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise<ThreadedRun>((resolve, reject) => {
    let replied = false;
    child.once('message', (reply: IsolatedRunReply) => {
      replied = true;
      if (reply.ok) resolve(reply.run);
      else reject(new Error(reply.message));
    });
    child.once('error', (error) => reject(new Error(`the benchmark process failed: ${error.message}`)));
    child.once('exit', (code, signal) => {
      if (!replied) reject(new Error(`the benchmark process exited (${signal ?? `code ${code}`}) before replying`));
    });
    child.send(request);
  });
}
