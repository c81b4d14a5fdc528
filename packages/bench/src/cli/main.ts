#!/usr/bin/env node
/**
 * The `heaplab` bin (built as dist/cli.js): parses the command line and runs it. The program
 * itself is in program.ts, which tests import without running it.
 */

import { makeProgram } from './program.js';

await makeProgram().parseAsync(process.argv);
