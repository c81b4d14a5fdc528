/**
 * `heaplab serve`: the heap playground (docs/playground.md) on a local static server.
 *
 *   heaplab serve [--port 8080] [--host 127.0.0.1]
 *
 * Every response carries the cross-origin isolation headers (serve/static-server.ts) the
 * page needs for its SharedArrayBuffer heaps. The built CLI serves the playground its build
 * bundled into dist/playground; run from the sources (`tsx src/cli/main.ts serve`), it
 * bundles the page into a temporary directory first. The URL goes to stdout; `--port 0`
 * takes any free port, and the URL names it. A port in use or not allowed exits with status
 * 1 and says so; SIGINT and SIGTERM close the server and exit with status 0.
 */

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { type Command, InvalidArgumentError } from 'commander';

import { type StaticServer, startStaticServer } from '../serve/static-server.js';
import { failRun } from './fail-run.js';

/** The port when `--port` is not given. */
export const DEFAULT_SERVE_PORT = 8080;
/** The host when `--host` is not given: this machine only. */
export const DEFAULT_SERVE_HOST = '127.0.0.1';

interface ServeOptions {
  port: number;
  host: string;
}

/** A TCP port: an integer from 0 (any free port) to 65535. */
export function parsePort(value: string): number {
  // Digits only: Number() would also take '0x1F90', '8e3' and ' 80'.
  const port = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new InvalidArgumentError(`a port is an integer from 0 (any free port) to 65535; '${value}' is not.`);
  }
  return port;
}

/** What a listen error means to the person who ran the command. */
function listenErrorMessage(error: NodeJS.ErrnoException, options: ServeOptions): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return `port ${options.port} on ${options.host} is in use; pick another with --port, or --port 0 for any free one`;
    case 'EACCES':
      return `port ${options.port} on ${options.host} is not allowed to this user (ports below 1024 usually need root); pick another with --port`;
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return `host ${options.host} is no address of this machine; use --host 127.0.0.1 (the default) or another local address`;
    default:
      return `cannot listen on ${options.host}:${options.port}: ${error.message}`;
  }
}

/**
 * The directory holding the built playground, and how to drop it at exit: dist/playground
 * beside the built CLI, or a fresh bundle when running from the sources.
 */
async function playgroundDirectory(): Promise<{ directory: string; discard(): void }> {
  if (!import.meta.url.endsWith('.ts')) {
    const directory = fileURLToPath(new URL('./playground/', import.meta.url));
    if (!existsSync(join(directory, 'index.html'))) {
      throw new Error(`the playground is missing from ${directory}: build bench again (pnpm -r build)`);
    }
    return { directory, discard: () => {} };
  }
  // By a URL tsup does not follow: the bundler (and esbuild with it) stays out of the built CLI.
  const bundler = new URL('../playground/bundle-playground.ts', import.meta.url).href;
  const { bundlePlayground } = (await import(bundler)) as typeof import('../playground/bundle-playground.js');
  const directory = mkdtempSync(join(tmpdir(), 'heaplab-playground-'));
  const discard = (): void => rmSync(directory, { recursive: true, force: true });
  try {
    await bundlePlayground(directory);
  } catch (error) {
    discard();
    throw error;
  }
  return { directory, discard };
}

/** Starts the server, prints its URL, and stops it on SIGINT or SIGTERM. */
export async function serveCommand(options: ServeOptions, command: Command): Promise<void> {
  let playground: Awaited<ReturnType<typeof playgroundDirectory>>;
  try {
    playground = await playgroundDirectory();
  } catch (error) {
    failRun(command, `error: ${(error as Error).message}`);
  }
  let server: StaticServer;
  try {
    server = await startStaticServer({ root: playground.directory, port: options.port, host: options.host });
  } catch (error) {
    playground.discard();
    failRun(command, `error: ${listenErrorMessage(error as NodeJS.ErrnoException, options)}`);
  }
  const stop = (): void => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    void server.close().then(() => {
      playground.discard();
      process.exit(0);
    });
  };
  // Before the URL is printed: a script that reads it and signals at once gets a clean exit.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  console.log(`heap playground at ${server.url}`);
  console.error('(cross-origin isolated: COOP same-origin, COEP require-corp; Ctrl-C stops)');
}

/** `--host`: any name or address but an empty one, which Node takes as every address and prints as none. */
function parseHost(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('an empty host; give a name or an address (127.0.0.1, ::1, 0.0.0.0 for every address)');
  return value;
}

/** Adds `serve` to `program`. */
export function addServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve the heap playground (backends side by side, playing a workload or a trace, live heap maps) on a local server')
    .option('-p, --port <port>', `the port (0: any free port, printed)`, parsePort, DEFAULT_SERVE_PORT)
    .option('--host <host>', 'the address to listen on (another machine can reach the page only if this allows it)', parseHost, DEFAULT_SERVE_HOST)
    .action(serveCommand);
}
