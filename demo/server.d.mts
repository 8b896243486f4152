// Types of demo/server.mjs for the tests that import it (tsconfig.test.json has no allowJs).
export const HOST: string;
export function resolveRequest(root: string, requestPath: string): { file: string } | { status: number };
export interface DemoServer {
  /** e.g. http://127.0.0.1:8080/ (always ends with '/'). */
  url: string;
  port: number;
  /** Requests so far, in order, with their status. */
  requests: { path: string; status: number }[];
  close(): Promise<void>;
}
export function serveStatic(root: string, options?: { port?: number; log?: (line: string) => void }): Promise<DemoServer>;
