/**
 * bayesgpu against its peers, in one process on one WebGPU device:
 *
 *   npm run bench -- [--quick] [--out bench.json] [selection flags]
 *   node bench/run.mjs bench [same flags]
 *
 * Kernel cases: conv2d forward, backward to input and backward to weight, and matmul, on the
 * conv and fully connected layers of LeNet, AlexNet and 3Conv3FC for 32x32 inputs at batches
 * 1, 32 and 256 (bench/compare/cases.ts), each on bayesgpu, tfjs-backend-webgpu (on bayesgpu's
 * GPUDevice) and tfjs-backend-cpu (bench/compare/implementations.ts). Each case warms every
 * implementation up, then runs rounds in which the implementations alternate; it reports medians
 * over the rounds and GFLOP/s with a multiply-add counted as 2. Then the ceiling (the best GEMM,
 * bench/compare/ceiling.ts) and the end-to-end numbers (bench/compare/end_to_end.ts).
 *
 * Prints progress to stderr and the markdown table of ratios to stdout; --out writes the JSON.
 * Not a test: the numbers depend on the machine and its load. test/bench/bench.test.ts runs
 * --quick and checks the JSON's structure only.
 *
 * Flags (lists are comma-separated; --name value and --name=value both work):
 *   --quick                 tiny: LeNet at batches 1 and 4, 2 rounds, small ceiling and end-to-end sizes
 *   --models LIST           lenet, alexnet, 3conv3fc (default all)
 *   --batches LIST          default 1,32,256
 *   --cases LIST            ops, or parts of their names: conv2d.forward, conv2d.backwardInput,
 *                           conv2d.backwardWeight, matmul (default all)
 *   --layers LIST           keep layers whose 'model.layer' contains one of these (e.g. conv2,lenet.fc1)
 *   --peers LIST            tfjs-webgpu, tfjs-cpu, or none (default both)
 *   --sections LIST         cases, ceiling, training, mc (default all; memory comes with training)
 *   --rounds N              timed rounds per case (default 5)
 *   --warmup N              untimed runs per implementation and case (default 1)
 *   --ceiling-sizes LIST    square GEMM sizes (default 256,512,1024)
 *   --train-batch N         default 256;  --train-steps N per round (default 3);  --train-warmup N (default 2)
 *   --mc-batch N            default 256;  --mc-samples N (default 25)
 *   --no-timestamps         wall time even where the adapter has 'timestamp-query'
 *   --out FILE              write the JSON there
 */
import { writeFileSync } from 'node:fs';
import { type Context, createContext } from '../src/node.js';
import { dawnProvider } from '../src/gpu/dawn.js';
import type { ModelName } from '../src/nn/models.js';
import { type Case, OPS, type Op, allModels, caseFlops, modelLayers, selectCases, shapeLabel } from './compare/cases.js';
import { measureCeiling } from './compare/ceiling.js';
import { benchMcPrediction, benchTraining } from './compare/end_to_end.js';
import { type ImplementationName, PEERS, type PeerName, type Runner, oursBackwardInputOnly, prepare, setupTfjs, teardownTfjs, tfjsVersion } from './compare/implementations.js';
import { type BenchResult, type CaseResult, type Failure, markdown } from './compare/report.js';
import { GpuTimer, type Measurement, type Sample, summarize, timeWall } from './compare/timing.js';

const SECTIONS = ['cases', 'ceiling', 'training', 'mc'] as const;
type Section = (typeof SECTIONS)[number];

export interface BenchConfig {
  quick: boolean;
  models: ModelName[];
  batches: number[];
  ops: Op[];
  layers?: string[];
  peers: PeerName[];
  sections: Section[];
  rounds: number;
  warmup: number;
  ceilingSizes: number[];
  trainBatch: number;
  trainSteps: number;
  trainWarmup: number;
  mcBatch: number;
  mcSamples: number;
  timestamps: boolean;
  out?: string;
}

class UsageError extends Error {}

/** Reads the flags above; unknown flags and bad values are errors that name the flag. */
export function parseArgs(args: readonly string[]): BenchConfig {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) throw new UsageError(`bench: unexpected argument '${a}' (flags start with --)`);
    const eq = a.indexOf('=');
    if (eq > 0) values.set(a.slice(2, eq), a.slice(eq + 1));
    else if (a === '--quick' || a === '--no-timestamps' || a === '--help') values.set(a.slice(2), 'true');
    else if (i + 1 < args.length) values.set(a.slice(2), args[++i]);
    else throw new UsageError(`bench: flag '${a}' expects a value`);
  }
  const known = ['quick', 'models', 'batches', 'cases', 'layers', 'peers', 'sections', 'rounds', 'warmup', 'ceiling-sizes', 'train-batch', 'train-steps', 'train-warmup', 'mc-batch', 'mc-samples', 'no-timestamps', 'out', 'help'];
  for (const k of values.keys()) if (!known.includes(k)) throw new UsageError(`bench: unknown flag '--${k}' (known: ${known.map((n) => `--${n}`).join(', ')})`);
  const quick = values.has('quick');
  const list = (name: string, fallback: string) => (values.get(name) ?? fallback).split(',').map((s) => s.trim()).filter((s) => s);
  const int = (name: string, fallback: number, min = 1) => {
    const raw = values.get(name);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`bench: --${name} expects an integer >= ${min}, got '${raw}'`);
    return n;
  };
  const ints = (name: string, fallback: string) =>
    list(name, fallback).map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`bench: --${name} expects positive integers, got '${s}'`);
      return n;
    });
  const oneOf = <T extends string>(name: string, items: string[], allowed: readonly T[], match: (item: string, a: T) => boolean): T[] => {
    const picked = allowed.filter((a) => items.some((item) => match(item, a)));
    const unmatched = items.filter((item) => !allowed.some((a) => match(item, a)));
    if (unmatched.length) throw new UsageError(`bench: --${name} got '${unmatched.join(',')}', expected some of ${allowed.join(', ')}`);
    return picked;
  };
  const peerItems = list('peers', PEERS.join(','));
  return {
    quick,
    models: oneOf('models', list('models', quick ? 'lenet' : allModels().join(',')), allModels(), (item, a) => item.toLowerCase() === a),
    batches: ints('batches', quick ? '1,4' : '1,32,256'),
    ops: oneOf('cases', list('cases', OPS.join(',')), OPS, (item, a) => a.toLowerCase().includes(item.toLowerCase()) || item.toLowerCase().startsWith(a.toLowerCase())),
    layers: values.has('layers') ? list('layers', '') : undefined,
    peers: peerItems.length === 1 && peerItems[0] === 'none' ? [] : oneOf('peers', peerItems, PEERS, (item, a) => item === a),
    sections: oneOf('sections', list('sections', SECTIONS.join(',')), SECTIONS, (item, a) => item === a || (item === 'memory' && a === 'training')),
    rounds: int('rounds', quick ? 2 : 5),
    warmup: int('warmup', 1, 0),
    ceilingSizes: ints('ceiling-sizes', quick ? '64,128' : '256,512,1024'),
    trainBatch: int('train-batch', quick ? 8 : 256),
    trainSteps: int('train-steps', quick ? 2 : 3),
    trainWarmup: int('train-warmup', quick ? 1 : 2),
    mcBatch: int('mc-batch', quick ? 2 : 256),
    mcSamples: int('mc-samples', 25),
    timestamps: !values.has('no-timestamps'),
    out: values.get('out'),
  };
}

const started = performance.now();
/** Progress on stderr, each line with the seconds since the start. */
const log = (line: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${line}\n`);

const failure = (e: unknown): Failure => ({ ms: null, gflops: null, error: e instanceof Error ? e.message : String(e) });

async function sample(timer: GpuTimer, runner: Runner): Promise<Sample> {
  await runner.activate?.();
  return runner.kind === 'gpu' ? timer.time(runner.work) : timeWall(runner.run);
}

/**
 * One case on every implementation: prepare and warm each one up (its errors stay its own),
 * then `rounds` rounds in which they alternate.
 */
async function runCase(ctx: Context, timer: GpuTimer, c: Case, config: BenchConfig, backwardInputOnly: boolean): Promise<CaseResult> {
  const impls: ImplementationName[] = ['ours', ...config.peers];
  const flops = caseFlops(c) * (c.op === 'conv2d.backwardInput' && !backwardInputOnly ? 2 : 1);
  const op = c.op === 'conv2d.backwardInput' && !backwardInputOnly ? 'conv2d.backwardInput+Weight' : c.op;
  const runners = new Map<ImplementationName, Runner>();
  const results = new Map<ImplementationName, Measurement | Failure>();
  const samples = new Map<ImplementationName, Sample[]>();
  try {
    for (const impl of impls) {
      try {
        const runner = await prepare(impl, ctx, c, backwardInputOnly);
        runners.set(impl, runner);
        for (let i = 0; i < config.warmup; i++) await sample(timer, runner);
        await ctx.sync(); // reports a GPU error of this implementation's warm-up, if any
        samples.set(impl, []);
      } catch (e) {
        results.set(impl, failure(e));
      }
    }
    for (let r = 0; r < config.rounds; r++) {
      for (const impl of impls) {
        const runner = runners.get(impl);
        if (!runner || results.has(impl)) continue;
        try {
          samples.get(impl)!.push(await sample(timer, runner));
        } catch (e) {
          results.set(impl, failure(e));
        }
      }
    }
    await ctx.sync();
  } finally {
    for (const runner of runners.values()) runner.dispose();
  }
  for (const impl of impls) if (!results.has(impl)) results.set(impl, summarize(samples.get(impl)!, flops));
  const peers: CaseResult['peers'] = {};
  for (const p of config.peers) peers[p] = results.get(p)!;
  return { op, shape: shapeLabel(c.layer), batch: c.batch, model: c.layer.model, layer: c.layer.layer, flops, ours: results.get('ours')!, peers };
}

function caseLine(r: CaseResult): string {
  const show = (m: Measurement | Failure | undefined) => (!m ? '–' : m.ms === null ? `error: ${m.error}` : `${m.ms} ms ${m.gflops} GFLOP/s`);
  return `${r.op} ${r.shape} N=${r.batch}: ours ${show(r.ours)}${Object.entries(r.peers).map(([p, m]) => `; ${p} ${show(m)}`).join('')}`;
}

/** Runs the whole benchmark on a fresh context and returns its JSON; destroys the context. */
export async function runBench(config: BenchConfig): Promise<BenchResult> {
  const ctx = await createContext({ timestampQuery: config.timestamps });
  const timer = new GpuTimer(ctx.device, config.timestamps);
  log(`bench on ${ctx.adapterName}; timing: ${timer.method}`);
  try {
    const gpu = config.peers.includes('tfjs-webgpu') ? await dawnProvider().catch(() => null) : null;
    await setupTfjs(ctx.device, gpu, config.peers);
    const result: BenchResult = {
      date: new Date().toISOString(),
      adapter: ctx.adapterName,
      timing: {
        method: timer.method,
        kernels: timer.method === 'gpu-timestamp' ? 'GPU timestamps of empty compute passes submitted just before and after the recorded work (Dawn may quantize them, to 65.5 us on SwiftShader)' : 'wall time from recording to queue.onSubmittedWorkDone()',
        peersCpu: 'wall time until the output data is read',
        endToEnd: 'wall time around ctx.sync()',
        statistic: `medians of ${config.rounds} rounds after ${config.warmup} warm-up run(s)`,
      },
      versions: { node: process.version, tfjs: config.peers.length ? tfjsVersion() : 'not run' },
      config: { ...config },
      cases: [],
      ceiling: null,
      training: null,
      mcPrediction: null,
      memory: null,
    };
    if (config.sections.includes('cases')) {
      const backwardInputOnly = await oursBackwardInputOnly(ctx);
      const layers = config.models.flatMap((m) => modelLayers(ctx, m));
      const cases = selectCases(layers, config.ops, config.batches, config.layers);
      log(`${cases.length} kernel cases; conv2d backward to input ${backwardInputOnly ? 'alone' : 'timed together with backward to weight (bayesgpu computes dw whenever it computes dx)'}`);
      for (const c of cases) {
        const r = await runCase(ctx, timer, c, config, backwardInputOnly);
        log(caseLine(r));
        result.cases.push(r);
      }
    }
    if (config.sections.includes('ceiling')) result.ceiling = await measureCeiling(ctx, timer, { sizes: config.ceilingSizes, rounds: config.rounds, log });
    if (config.sections.includes('training')) {
      const { training, memory } = await benchTraining(ctx, { batch: config.trainBatch, warmupSteps: config.trainWarmup, steps: config.trainSteps, rounds: config.rounds }, log);
      result.training = training;
      result.memory = memory;
    }
    if (config.sections.includes('mc')) result.mcPrediction = await benchMcPrediction(ctx, { batch: config.mcBatch, samples: config.mcSamples, rounds: config.rounds }, log);
    return result;
  } finally {
    teardownTfjs();
    timer.destroy();
    ctx.destroy();
  }
}

export async function main(args: string[]): Promise<void> {
  let code = 0;
  try {
    if (args.includes('--help')) {
      log('usage: npm run bench -- [--quick] [--out FILE] [--models ..] [--batches ..] [--cases ..] [--layers ..] [--peers ..] [--sections ..] [--rounds N] (see bench/bench.ts)');
    } else {
      const config = parseArgs(args);
      const result = await runBench(config);
      if (config.out) {
        writeFileSync(config.out, `${JSON.stringify(result, null, 2)}\n`);
        log(`wrote ${config.out}`);
      }
      console.log(markdown(result, config.peers));
    }
  } catch (e) {
    log(e instanceof UsageError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e));
    code = e instanceof UsageError ? 2 : 1;
  }
  // dawn.node keeps the process alive while anything of it is referenced: the device is destroyed above; exit deliberately.
  process.exit(code);
}
