/**
 * The entry of a process that runs one isolated row (see `isolated-run.ts`): registers the
 * backends, takes one `IsolatedRunRequest` from its parent, runs it here, replies once and
 * ends.
 */

import { discoverBackends } from '../contenders/backends.js';
import type { IsolatedRunReply, IsolatedRunRequest } from './isolated-run.js';
import { sharedTables } from '../workloads/glibc-thread/request-tables.js';
import { runThreaded } from './threaded-run.js';

process.once('message', (request: IsolatedRunRequest) => {
  void (async () => {
    let reply: IsolatedRunReply;
    try {
      await discoverBackends();
      reply = { ok: true, run: await runThreaded({ ...request, tablesBuffer: sharedTables().buffer }) };
    } catch (error) {
      reply = { ok: false, message: error instanceof Error ? error.message : String(error) };
    }
    process.send!(reply, () => process.disconnect());
  })();
});
