/**
 * A static file server for the browser tests: node:http on 127.0.0.1 only, an
 * ephemeral port, GET/HEAD only, and nothing outside its root directory.
 *
 * WebGPU needs a secure context, and http://127.0.0.1 is one (file:// and
 * about:blank pages get no navigator.gpu in Chromium's headless mode).
 */
import { createReadStream, realpathSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, resolve, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wgsl': 'text/plain; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

export interface StaticServer {
  /** e.g. http://127.0.0.1:43211/ (always ends with '/'). */
  url: string;
  /** Paths requested so far, in order, with their status (for assertions and debugging). */
  log: { path: string; status: number }[];
  close(): Promise<void>;
}

/**
 * Maps a request path to a file under `root`, or returns a status: 403 for a
 * path that escapes the root (including through a symlink), 404 for a missing
 * file or a directory, 400 for a malformed path.
 */
export function resolveRequest(root: string, requestPath: string): { file: string } | { status: number } {
  let path: string;
  try {
    path = decodeURIComponent(new URL(requestPath, 'http://127.0.0.1').pathname);
  } catch {
    return { status: 400 };
  }
  if (path.includes('\0')) return { status: 400 };
  if (path.endsWith('/')) path += 'index.html';
  const realRoot = realpathSync(root);
  const file = resolve(realRoot, `.${path}`);
  if (file !== realRoot && !file.startsWith(realRoot + sep)) return { status: 403 };
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return { status: 404 };
  }
  if (!real.startsWith(realRoot + sep)) return { status: 403 };
  if (!statSync(real).isFile()) return { status: 404 };
  return { file: real };
}

export async function serveStatic(root: string): Promise<StaticServer> {
  const log: StaticServer['log'] = [];
  const server: Server = createServer((req, res) => {
    const send = (status: number, body = '') => {
      log.push({ path: req.url ?? '', status });
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
    const found = resolveRequest(root, req.url ?? '/');
    if ('status' in found) return send(found.status, `${found.status}`);
    log.push({ path: req.url ?? '', status: 200 });
    res.writeHead(200, {
      'content-type': TYPES[extname(found.file)] ?? 'application/octet-stream',
      'content-length': statSync(found.file).size,
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(found.file).pipe(res);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    log,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
