/**
 * The entry of a process that runs one isolated row (see isolated-run.ts): takes one
 * `IsolatedRunRequest` from its parent, registers the backends (heaplab's, and the modules
 * from outside heaplab that the request names), runs the request here with the loop of the
 * workload it names (which builds its own shared input, in this process), replies once and
 * ends.
 */

import { discoverBackends } from '../contenders/backends.js';
import { threadLoopOf } from '../workloads/index.js';
import type { IsolatedRunReply, IsolatedRunRequest } from './isolated-run.js';
import { runThreaded } from './threaded-run.js';

process.once('message', (request: IsolatedRunRequest) => {
  void (async () => {
    let reply: IsolatedRunReply;
    try {
      const { workload, backendModules, ...run } = request;
      await discoverBackends(backendModules);
      reply = { ok: true, run: await runThreaded({ ...run, loop: threadLoopOf(workload) }) };
    } catch (error) {
      reply = { ok: false, message: error instanceof Error ? error.message : String(error) };
    }
    process.send!(reply, () => process.disconnect());
  })();
});
