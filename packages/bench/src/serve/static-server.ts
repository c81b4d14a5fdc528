/**
 * The static file server of `heaplab serve`: one directory over HTTP, with the headers that
 * make a page cross-origin isolated. A SharedArrayBuffer exists on a page only when the page
 * is isolated, and the playground's heaps are SharedArrayBuffers shared with web workers, so
 * every response (errors included) carries:
 *
 *   Cross-Origin-Opener-Policy: same-origin       the page gets a browsing context group of its own
 *   Cross-Origin-Embedder-Policy: require-corp    it loads nothing that has not agreed to be loaded
 *   Cross-Origin-Resource-Policy: same-origin     and what it loads from here agrees
 *
 * GET and HEAD only (405 otherwise); a path that cannot be decoded gets 400; a path that
 * leaves the root, even through `..`, an encoded slash or a symbolic link, gets 403; a missing
 * file 404. A directory serves its index.html.
 */

import { createReadStream, realpathSync, type Stats, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream';

import { ISOLATION_HEADERS as CORE_ISOLATION_HEADERS } from '@heaplab/core';

/** The headers every response carries (see the file comment). */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  // COOP and COEP, as core's shared-memory check names them.
  ...CORE_ISOLATION_HEADERS,
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Content types by file extension; anything else is served as bytes. */
export const MIME_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.rep': 'text/plain; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8',
};

const BYTES_TYPE = 'application/octet-stream';

/** A running server and how to reach and stop it. */
export interface StaticServer {
  server: Server;
  /** `http://host:port/`, with the port the system gave when 0 was asked for. */
  url: string;
  port: number;
  /** Stops accepting connections, ends the open ones, and resolves when closed. */
  close(): Promise<void>;
}

/** Where to listen and what to serve. */
export interface StaticServerOptions {
  root: string;
  port: number;
  host: string;
}

/** Sends a short text answer (an error) with the isolation headers. */
function sendText(response: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  response.writeHead(status, { ...ISOLATION_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...extra });
  response.end(`${text}\n`);
}

/** Whether `file` is `base` or lies below it. */
function isWithin(base: string, file: string): boolean {
  return file === base || file.startsWith(base + sep);
}

/**
 * The file under `root` a request path names, or a status when there is none: 400 for a path
 * that cannot be decoded, 403 for one that leaves `root` (by its name or through a symbolic
 * link), 404 for one that names nothing.
 */
export function resolveRequestPath(root: string, urlPath: string): { file: string; stats: Stats } | { status: 400 | 403 | 404 } {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath.split('?')[0]!.split('#')[0]!);
  } catch {
    return { status: 400 };
  }
  // A NUL or a backslash has no business in a URL path; both have tricked path checks before.
  if (decoded.includes('\0') || decoded.includes('\\')) return { status: 403 };
  const base = resolve(root);
  const file = resolve(join(base, decoded));
  if (!isWithin(base, file)) return { status: 403 };
  let stats: Stats;
  try {
    stats = statSync(file);
    // The name stays inside; a link may not lead out.
    if (!isWithin(realpathSync(base), realpathSync(file))) return { status: 403 };
  } catch {
    return { status: 404 };
  }
  if (stats.isDirectory()) {
    const index = join(file, 'index.html');
    try {
      return { file: index, stats: statSync(index) };
    } catch {
      return { status: 404 };
    }
  }
  return stats.isFile() ? { file, stats } : { status: 404 };
}

/** Answers one request from `root`. */
function handle(root: string, request: IncomingMessage, response: ServerResponse): void {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    sendText(response, 405, `method ${request.method ?? '?'} not allowed: this server only reads files`, { Allow: 'GET, HEAD' });
    return;
  }
  const found = resolveRequestPath(root, request.url ?? '/');
  if ('status' in found) {
    const reason = { 400: 'bad request: the path cannot be decoded', 403: 'forbidden: that path leaves the served directory', 404: 'not found' }[found.status];
    sendText(response, found.status, reason);
    return;
  }
  response.writeHead(200, {
    ...ISOLATION_HEADERS,
    'Content-Type': MIME_TYPES[extname(found.file).toLowerCase()] ?? BYTES_TYPE,
    'Content-Length': String(found.stats.size),
    // The playground is rebuilt while someone works on it: a reload shows the new one.
    'Cache-Control': 'no-cache',
  });
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  // pipeline, not pipe: a client that leaves mid-file closes the file too.
  pipeline(createReadStream(found.file), response, () => {});
}

/**
 * Serves `options.root` on `options.host:options.port` (port 0: any free port).
 * @throws the listen error (`EADDRINUSE`, `EACCES`, `EADDRNOTAVAIL`) as Node reports it
 */
export function startStaticServer(options: StaticServerOptions): Promise<StaticServer> {
  const server = createServer((request, response) => handle(options.root, request, response));
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      // Once listening, an error (too many open files, say) is reported, not left to crash.
      server.on('error', (error) => console.error(`heaplab serve: ${error.message}`));
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : options.port;
      const host = options.host.includes(':') ? `[${options.host}]` : options.host;
      resolvePromise({
        server,
        port,
        url: `http://${host}:${port}/`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
