/**
 * The calling thread's own CPU time and its time spent waiting for a CPU, from Linux's
 * `/proc/thread-self/schedstat` ("on-CPU ns, run-queue wait ns, time slices"). A process's
 * CPU time (`process.cpuUsage`) cannot tell two threads that ran at once from two that took
 * turns on one core with start-up added; these two figures per thread can: a thread that had
 * a core to itself for its whole loop has CPU time equal to its loop time and no wait. On
 * this two-core machine, shared with other work, that is what says whether a 2-thread figure
 * was disturbed. Null where the file does not exist (not Linux) or cannot be read.
 *
 * The kernel adds a running thread's time to these figures at scheduler events (its timer
 * tick, a few milliseconds, or a switch), not when the file is read: a reading lags by up to
 * a tick, and a loop shorter than one may read no CPU time at all.
 */

import { readFileSync } from 'node:fs';

/** One reading of the calling thread's clocks, in nanoseconds. */
export interface ThreadClock {
  cpuNs: number;
  waitNs: number;
}

const SCHEDSTAT = '/proc/thread-self/schedstat';

/** Reads this thread's clocks; null where Linux's per-thread schedstat is missing. */
export function readThreadClock(): ThreadClock | null {
  try {
    // Synchronous fs calls run on the calling thread, so thread-self is this worker.
    const [cpu, wait] = readFileSync(SCHEDSTAT, 'latin1').split(' ');
    const cpuNs = Number(cpu);
    const waitNs = Number(wait);
    return Number.isFinite(cpuNs) && Number.isFinite(waitNs) ? { cpuNs, waitNs } : null;
  } catch {
    return null;
  }
}
