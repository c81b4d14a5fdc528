/**
 * The entry of a process that measures one (contender, level) of the latency workload (see
 * isolated.ts): takes one request, registers the backends (heaplab's, and the modules from
 * outside heaplab that the request names), calibrates this process's clock, replies with its
 * rows or its failure, and ends.
 */

import { discoverBackends } from '../../contenders/backends.js';
import { chooseClock } from './clock.js';
import type { IsolatedLevelReply, IsolatedLevelRequest } from './isolated.js';
import { measureLevel } from './rows.js';

process.once('message', (request: IsolatedLevelRequest) => {
  void (async () => {
    let reply: IsolatedLevelReply;
    try {
      await discoverBackends(request.backendModules);
      reply = { ok: true, rows: measureLevel(request.contender, request.level, request.settings, chooseClock().chosen, true) };
    } catch (error) {
      reply = { ok: false, message: error instanceof Error ? error.message : String(error) };
    }
    process.send!(reply, () => process.disconnect());
  })();
});
