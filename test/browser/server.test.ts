/** The static server of the browser tests serves its root and nothing outside it. */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StaticServer, serveStatic } from './server.js';

/** A raw GET: the path goes out exactly as written (fetch would normalise '..'). */
function get(url: string, path: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((ok, fail) => {
    const { hostname, port } = new URL(url);
    const req = request({ host: hostname, port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('test static server', () => {
  let base: string;
  let server: StaticServer;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'bayesgpu-server-'));
    mkdirSync(join(base, 'root', 'sub'), { recursive: true });
    writeFileSync(join(base, 'root', 'index.html'), '<p>hi</p>');
    writeFileSync(join(base, 'root', 'sub', 'a.js'), 'export {}');
    writeFileSync(join(base, 'secret.txt'), 'secret');
    symlinkSync(join(base, 'secret.txt'), join(base, 'root', 'link.txt'));
    server = await serveStatic(join(base, 'root'));
  });

  afterAll(async () => {
    await server.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('listens on 127.0.0.1 with an ephemeral port', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it('serves files with their content type, and index.html for /', async () => {
    expect(await get(server.url, '/')).toMatchObject({ status: 200, body: '<p>hi</p>', type: 'text/html; charset=utf-8' });
    expect(await get(server.url, '/sub/a.js')).toMatchObject({ status: 200, type: 'text/javascript; charset=utf-8' });
  });

  it('refuses every way out of the root', async () => {
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/sub/..%2f..%2fsecret.txt', '/link.txt']) {
      const res = await get(server.url, path);
      expect([403, 404], path).toContain(res.status);
      expect(res.body).not.toContain('secret');
    }
    expect((await get(server.url, '/..%2fsecret.txt')).status).toBe(403);
    expect((await get(server.url, '/link.txt')).status).toBe(403);
  });

  it('answers 404 for a missing file or a directory, 400 for a NUL byte', async () => {
    expect((await get(server.url, '/nope.js')).status).toBe(404);
    expect((await get(server.url, '/sub')).status).toBe(404);
    expect((await get(server.url, '/a%00.js')).status).toBe(400);
  });
});
