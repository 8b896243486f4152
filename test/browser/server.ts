/**
 * The static file server of the browser tests: the demo's server (demo/server.mjs:
 * node:http on 127.0.0.1 only, GET/HEAD only, nothing outside its root) on an
 * ephemeral port, with the request log under the name these tests use.
 *
 * WebGPU needs a secure context, and http://127.0.0.1 is one (file:// and
 * about:blank pages get no navigator.gpu in Chromium's headless mode).
 */
import { resolveRequest, serveStatic as serveDemo } from '../../demo/server.mjs';

export { resolveRequest };

export interface StaticServer {
  /** e.g. http://127.0.0.1:43211/ (always ends with '/'). */
  url: string;
  /** Paths requested so far, in order, with their status (for assertions and debugging). */
  log: { path: string; status: number }[];
  close(): Promise<void>;
}

export async function serveStatic(root: string): Promise<StaticServer> {
  const server = await serveDemo(root);
  return { url: server.url, log: server.requests, close: () => server.close() };
}
