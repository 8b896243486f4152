/**
 * The demo's server (demo/server.mjs) serves its root on 127.0.0.1 and nothing
 * outside it; `node demo/serve.mjs` builds the bundles, serves demo/ and prints the URL.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_DIR } from '../../demo/serve.mjs';
import { type DemoServer, serveStatic } from '../../demo/server.mjs';

interface Reply { status: number; body: string; type: string; encoding: string | undefined }

/** A raw request: the path goes out exactly as written (fetch would normalise '..'). */
function send(url: string, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((ok, fail) => {
    const { hostname, port } = new URL(url);
    const req = request({ host: hostname, port, path, method }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c) => (body += c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']), encoding: res.headers['content-encoding'] }));
    });
    req.on('error', fail);
    req.end();
  });
}

const WAYS_OUT = ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/sub/..%2f..%2fsecret.txt', '/link.txt', '/sub/../../secret.txt'];

describe('demo server: a temporary root', () => {
  let base: string;
  let server: DemoServer;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'bayesgpu-demo-server-'));
    mkdirSync(join(base, 'root', 'sub'), { recursive: true });
    writeFileSync(join(base, 'root', 'index.html'), '<p>hi</p>');
    writeFileSync(join(base, 'root', 'sub', 'index.html'), '<p>sub</p>');
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
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
  });

  it('serves files with their content type, and index.html for a folder path ending in /', async () => {
    expect(await send(server.url, '/')).toMatchObject({ status: 200, body: '<p>hi</p>', type: 'text/html; charset=utf-8' });
    expect(await send(server.url, '/sub/')).toMatchObject({ status: 200, body: '<p>sub</p>' });
    expect(await send(server.url, '/sub/a.js?v=1')).toMatchObject({ status: 200, type: 'text/javascript; charset=utf-8' });
    expect(await send(server.url, '/', 'HEAD')).toMatchObject({ status: 200, body: '' });
  });

  it('refuses every way out of the root: 403 when it escapes, never the file', async () => {
    for (const path of WAYS_OUT) {
      const res = await send(server.url, path);
      expect([403, 404], path).toContain(res.status);
      expect(res.body, path).not.toContain('secret');
    }
    expect((await send(server.url, '/..%2fsecret.txt')).status).toBe(403);
    expect((await send(server.url, '/link.txt')).status).toBe(403);
  });

  it('answers 404 for a missing file or a folder without /, 400 for a NUL byte or bad escape, 405 for other methods', async () => {
    expect((await send(server.url, '/nope.js')).status).toBe(404);
    expect((await send(server.url, '/sub')).status).toBe(404);
    expect((await send(server.url, '/a%00.js')).status).toBe(400);
    expect((await send(server.url, '/%E0%A4%A.js')).status).toBe(400);
    expect((await send(server.url, '/', 'POST')).status).toBe(405);
    expect(server.requests.at(-1)).toEqual({ path: '/', status: 405 });
  });
});

describe('demo server: demo/', () => {
  let server: DemoServer;
  beforeAll(async () => {
    server = await serveStatic(DEMO_DIR);
  });
  afterAll(async () => {
    await server.close();
  });

  it('serves the page, and the gzipped data as plain bytes (no Content-Encoding: the page gunzips them)', async () => {
    const page = await send(server.url, '/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<script type="module" src="build/main.js">');
    const data = await send(server.url, '/data/mnist-test-1000-labels-idx1-ubyte.gz');
    expect(data).toMatchObject({ status: 200, type: 'application/octet-stream', encoding: undefined });
    expect(data.body.charCodeAt(0)).toBe(0x1f);
    expect(data.body.charCodeAt(1)).toBe(0x8b);
  });

  it('serves nothing of the repository outside demo/', async () => {
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/data/..%2f..%2fpackage.json', '/../src/index.ts']) {
      const res = await send(server.url, path);
      expect([403, 404], path).toContain(res.status);
      expect(res.body, path).not.toContain('bayesgpu');
    }
  });
});

describe('node demo/serve.mjs', () => {
  it('builds the bundles, serves demo/ on 127.0.0.1 and prints the URL', async () => {
    const child = spawn(process.execPath, [join(DEMO_DIR, 'serve.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      const url = await new Promise<string>((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`no URL printed within 60 s; output:\n${out}`)), 60_000);
        const onData = (chunk: Buffer) => {
          out += chunk.toString();
          const m = /serving demo\/ at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
          if (m) {
            clearTimeout(timer);
            ok(m[1]);
          }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.once('exit', (code) => fail(new Error(`serve.mjs exited with ${code}; output:\n${out}`)));
      });
      expect(out).toMatch(/bundled demo\/build\/ \(main\.js \d+ KiB, worker\.js \d+ KiB\)/);
      const main = await send(url, '/build/main.js');
      expect(main).toMatchObject({ status: 200, type: 'text/javascript; charset=utf-8' });
      expect(main.body.length).toBeGreaterThan(10_000);
      expect((await send(url, '/build/worker.js')).status).toBe(200);
      expect((await send(url, '/../package.json')).status).not.toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('rejects a bad --port before building', async () => {
    const child = spawn(process.execPath, [join(DEMO_DIR, 'serve.mjs'), '--port', 'eighty'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((ok) => child.once('exit', ok));
    expect(code).toBe(1);
    expect(err).toContain(`option '--port' expected an integer in 0..65535, got "eighty"`);
  });
});
