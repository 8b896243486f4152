/**
 * The static file server of the browser tests is the demo's (demo/server.mjs: node:http on
 * 127.0.0.1 only, GET/HEAD only, nothing outside its root; tested in test/demo/server.test.ts),
 * on an ephemeral port.
 *
 * WebGPU needs a secure context, and http://127.0.0.1 is one (file:// and
 * about:blank pages get no navigator.gpu in Chromium's headless mode).
 */
export { type DemoServer as StaticServer, serveStatic } from '../../demo/server.mjs';
