/**
 * A consumer of the published package, as a user gets it: `npm pack` of this
 * repository, then a fresh project in a temporary directory that installs the
 * tarball (dependencies from the npm cache, nothing from this repository's
 * node_modules). Shared by test/package/pack.test.ts and
 * test/readme/readme.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, ensureBuilt } from '../../scripts/build.mjs';

export const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** A child's environment without the npm_* variables of an enclosing `npm test`, and without npm's chatter. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, NO_COLOR: '1', npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false', ...extra };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end and reports its exit code and output; never rejects. */
export function runCommand(cmd: string, args: string[], cwd: string, options: { timeout?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((ok) => {
    execFile(cmd, args, { cwd, env: options.env ?? cleanEnv(), timeout: options.timeout ?? 90_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      ok({ code, stdout, stderr });
    });
  });
}

/** Runs a command that must succeed; resolves to its stdout, rejects with everything it printed. */
export async function run(cmd: string, args: string[], cwd: string, timeout = 90_000): Promise<string> {
  const r = await runCommand(cmd, args, cwd, { timeout });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed with exit code ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r.stdout;
}

export interface Consumer {
  /** The temporary directory holding the tarball and the consumer project. */
  work: string;
  /** The consumer project: package.json ("type": "module") and node_modules/bayesgpu from the tarball. */
  dir: string;
  tarball: string;
  /** Paths inside the tarball (package/ prefix removed). */
  packedFiles: string[];
  /** `npm install` more packages into the consumer (from the npm cache). */
  install(...specs: string[]): Promise<void>;
  dispose(): void;
}

/** Builds dist/ when stale, packs it, and installs the tarball into a fresh consumer project. */
export async function packAndInstall(prefix = 'bayesgpu-pack-'): Promise<Consumer> {
  await ensureBuilt();
  const work = mkdtempSync(join(tmpdir(), prefix));
  try {
    // --ignore-scripts: dist/ is fresh (ensureBuilt); prepack would only build it again.
    const packed = JSON.parse(await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT)) as { filename: string; files: { path: string }[] }[];
    const tarball = join(work, packed[0].filename);
    const dir = join(work, 'consumer');
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'bayesgpu-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2));
    const install = async (...specs: string[]) => {
      await run(npm, ['install', ...specs, '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock'], dir, 110_000);
    };
    await install(tarball);
    return { work, dir, tarball, packedFiles: packed[0].files.map((f) => f.path), install, dispose: () => rmSync(work, { recursive: true, force: true }) };
  } catch (e) {
    rmSync(work, { recursive: true, force: true });
    throw e;
  }
}
