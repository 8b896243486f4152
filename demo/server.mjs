/**
 * The demo's static file server: node:http bound to 127.0.0.1 only, GET/HEAD
 * only, and nothing outside its root directory (403 for a path that escapes
 * it, also through a symlink; 404 for a missing file or a directory).
 *
 * WebGPU needs a secure context: http://127.0.0.1 is one, a LAN address is not,
 * which is one more reason to bind to the loopback address only.
 *
 * Files are sent as they are on disk, never with a Content-Encoding: the
 * gzipped IDX data sets are fetched as bytes and unpacked by the page
 * (decodeMnist runs DecompressionStream).
 */
import { createReadStream, realpathSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, resolve, sep } from 'node:path';

export const HOST = '127.0.0.1';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wgsl': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/**
 * Maps a request path to a file under `root`, or returns a status: 403 for a
 * path that escapes the root (including through a symlink), 404 for a missing
 * file or a directory, 400 for a malformed path. '/' and 'dir/' mean index.html.
 * @param {string} root
 * @param {string} requestPath
 * @returns {{ file: string } | { status: number }}
 */
export function resolveRequest(root, requestPath) {
  let path;
  try {
    path = decodeURIComponent(new URL(requestPath, `http://${HOST}`).pathname);
  } catch {
    return { status: 400 };
  }
  if (path.includes('\0')) return { status: 400 };
  if (path.endsWith('/')) path += 'index.html';
  const realRoot = realpathSync(root);
  const file = resolve(realRoot, `.${path}`);
  if (file !== realRoot && !file.startsWith(realRoot + sep)) return { status: 403 };
  let real;
  try {
    real = realpathSync(file);
  } catch {
    return { status: 404 };
  }
  if (!real.startsWith(realRoot + sep)) return { status: 403 };
  if (!statSync(real).isFile()) return { status: 404 };
  return { file: real };
}

/**
 * Serves `root` on http://127.0.0.1:`port`/ (port 0: an ephemeral port).
 * @param {string} root
 * @param {{ port?: number, log?: (line: string) => void }} [options]
 */
export async function serveStatic(root, { port = 0, log } = {}) {
  /** @type {{ path: string, status: number }[]} */
  const requests = [];
  const server = createServer((req, res) => {
    const path = req.url ?? '';
    const done = (status) => {
      requests.push({ path, status });
      log?.(`${status} ${req.method} ${path}`);
    };
    const send = (status, body) => {
      done(status);
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
    const found = resolveRequest(root, path || '/');
    if ('status' in found) return send(found.status, String(found.status));
    done(200);
    res.writeHead(200, {
      'content-type': TYPES[extname(found.file)] ?? 'application/octet-stream',
      'content-length': statSync(found.file).size,
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(found.file).pipe(res);
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, HOST, () => ok(undefined));
  });
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    url: `http://${HOST}:${address.port}/`,
    port: address.port,
    requests,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(() => ok(undefined));
      }),
  };
}
