/**
 * Any network saves and loads: a user's own network with a Residual block survives saveModel ->
 * loadModel bit for bit (parameters, predictions under a fixed key, Adam state, and the bytes of a
 * second save); the registry rebuilds user-registered layers and names bad entries by their path;
 * files of the first format ('bayesgpu/1') still load; a refused file allocates nothing. Also the
 * Residual block's backward against central finite differences of a float64 reference.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, randomArray } from '../helpers.js';
import type { Context } from '../../src/gpu/context.js';
import type { Tensor } from '../../src/gpu/tensor.js';
import { BayesError } from '../../src/errors.js';
import { BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Softplus } from '../../src/nn/layers.js';
import { BBBConv2d, BBBLinear } from '../../src/nn/bayes.js';
import { Regressor, Residual, Sequential } from '../../src/nn/sequential.js';
import { bayesianRegressor } from '../../src/uncertainty/regression.js';
import { BBBLeNet, LeNet, Model } from '../../src/nn/models.js';
import { type BuildState, type LayerConfig, type Pass, Module } from '../../src/nn/module.js';
import { layerFromConfig, layerTypes, registerLayer } from '../../src/nn/registry.js';
import { scale } from '../../src/ops/elementwise.js';
import { loadCheckpoint, loadModel, loadOptimizer, loadStateDict, modelMetadata, saveCheckpoint, saveModel } from '../../src/io/checkpoint.js';
import { loadModelFile, saveModelFile } from '../../src/io/checkpoint_files.js';
import { decodeSafetensors, encodeSafetensors, type TensorEntry } from '../../src/io/safetensors.js';
import { Adam } from '../../src/train/adam.js';
import { conv2dRef } from '../reference/conv2d.js';
import { expectRefused, metered } from '../io/hostile_files.js';

const SHAPE = [1, 8, 8];
const priors = { prior_mu: 0, prior_sigma: 0.2, posterior_rho_initial: [-4, 0.1] as [number, number] };

/** conv -> Residual(conv, BatchNorm2d, relu, conv; shortcut 1x1 conv stride 2) -> flatten -> BBBLinear. */
function residualNet(ctx: Context): Sequential {
  return new Sequential(ctx, {
    conv1: new Conv2d(1, 4, 3, { padding: 1 }),
    act1: new ReLU(),
    block: new Residual(new Sequential({
      conv1: new Conv2d(4, 6, 3, { stride: 2, padding: 1 }),
      bn: new BatchNorm2d(6),
      act: new ReLU(),
      conv2: new Conv2d(6, 6, 3, { padding: 1, bias: false }),
    }), { shortcut: new Conv2d(4, 6, 1, { stride: 2 }) }),
    flatten: new Flatten(),
    fc: new BBBLinear(null, 3, { priors }),
  }, { inputShape: SHAPE, seed: 7, classNames: ['a', 'b', 'c'], preprocessing: { invert: true, mean: [0.5], std: [0.25] } });
}

async function params(model: Module): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) out.set(name, (await p.value.read()) as Float32Array);
  return out;
}

const same = (a: ArrayLike<number>, b: ArrayLike<number>) => Buffer.from(new Float32Array(a).buffer).equals(Buffer.from(new Float32Array(b).buffer));

/** Every parameter set to distinct values (running variances positive), Adam with moments and a step count. */
function scramble(ctx: Context, model: Sequential): Adam {
  let seed = 1;
  for (const [name, p] of model.namedParameters()) {
    const positive = name.endsWith('running_var');
    ctx.write(p.value, randomArray(p.value.size, seed++, positive ? 0.5 : -0.8, positive ? 2 : 0.8));
  }
  const adam = new Adam(model.namedParameters(), { lr: 3e-3, beta2: 0.99, weightDecay: 1e-4 });
  for (const s of adam.state.values()) {
    ctx.write(s.m, randomArray(s.m.size, seed++, -1, 1));
    ctx.write(s.v, randomArray(s.v.size, seed++, 0, 1));
  }
  adam.step = 17;
  return adam;
}

/** Logits in eval mode (running statistics) with the posterior sampled under a fixed key. */
async function logits(ctx: Context, model: Sequential): Promise<Float32Array> {
  model.eval();
  const x = ctx.tensor(randomArray(2 * 64, 99, 0, 1), [2, ...SHAPE]);
  const { logits } = model.run(x, { samples: 3, sample: true, seed: 5, step: 2 });
  return (await logits.read()) as Float32Array;
}

function edit(bytes: Uint8Array, change: (tensors: Record<string, TensorEntry & { data: Float32Array }>, metadata: Record<string, string>) => void): Uint8Array {
  const file = decodeSafetensors(bytes);
  const tensors: Record<string, TensorEntry & { data: Float32Array }> = {};
  for (const [name, t] of file.tensors) tensors[name] = { dtype: 'F32', shape: [...t.shape], data: Float32Array.from(t.data) };
  const metadata = { ...file.metadata };
  change(tensors, metadata);
  return encodeSafetensors(tensors, metadata);
}

/** loadModel refuses, naming every part, and leaves no GPU tensor behind. */
function refused(ctx: Context, bytes: Uint8Array, code: 'BAD_FILE' | 'CHECKPOINT_MISMATCH', ...parts: string[]): BayesError {
  const live = ctx.memory().liveTensors;
  const e = expectRefused(() => loadModel(ctx, bytes), code, 'loadModel: ', ...parts);
  expect(ctx.memory().liveTensors, 'GPU tensors left behind').toBe(live);
  return e;
}

describe('saveModel / loadModel', () => {
  it('a network with a Residual block survives bit for bit: parameters, predictions, Adam state, and a second save', async () => {
    const ctx = await context();
    const model = residualNet(ctx);
    const adam = scramble(ctx, model);
    const bytes = await saveModel(model, { optimizer: adam, metadata: { epochs: '4', note: 'residual' } });

    const loaded = loadModel(ctx, bytes);
    expect(loaded).toBeInstanceOf(Sequential);
    expect(loaded).not.toBeInstanceOf(Model);
    expect(loaded.getConfig()).toEqual(model.getConfig());
    expect(loaded.modelOptions).toEqual({ inputShape: SHAPE, seed: 7, classNames: ['a', 'b', 'c'], preprocessing: { invert: true, mean: [0.5], std: [0.25] } });
    const block = loaded.layers[2][1] as Residual;
    expect(block).toBeInstanceOf(Residual);
    expect(block.shortcut).toBeInstanceOf(Conv2d);
    const fc = loaded.layers[4][1] as BBBLinear;
    expect(fc.priors).toEqual((model.layers[4][1] as BBBLinear).priors);

    const a = await params(model);
    const b = await params(loaded);
    expect([...b.keys()]).toEqual([...a.keys()]);
    expect([...a.keys()]).toContain('block.body.bn.running_var');
    expect([...a.keys()]).toContain('block.shortcut.weight');
    for (const [name, v] of a) expect(same(b.get(name)!, v), name).toBe(true);
    expect(same(await logits(ctx, loaded), await logits(ctx, model)), 'logits').toBe(true);

    const restored = loadOptimizer(loaded, bytes)!;
    expect(restored).toBeInstanceOf(Adam);
    expect([restored.step, restored.lr, restored.beta1, restored.beta2, restored.eps, restored.weightDecay]).toEqual([17, 3e-3, 0.9, 0.99, 1e-8, 1e-4]);
    expect([...restored.state.keys()]).toEqual([...adam.state.keys()]);
    expect(restored.state.has('block.body.bn.running_mean')).toBe(false);
    for (const [name, s] of adam.state) {
      const r = restored.state.get(name)!;
      expect(same(await r.m.read(), await s.m.read()), `m ${name}`).toBe(true);
      expect(same(await r.v.read(), await s.v.read()), `v ${name}`).toBe(true);
    }
    expect(modelMetadata(bytes)).toEqual({ epochs: '4', note: 'residual' });

    const again = await saveModel(loaded, { optimizer: restored, metadata: { epochs: '4', note: 'residual' } });
    expect(Buffer.from(again).equals(Buffer.from(bytes)), 'a second save is byte-identical').toBe(true);
    expect(loadOptimizer(loaded, await saveModel(loaded))).toBeNull();
    for (const m of [model, loaded]) m.dispose();
  });

  it('a named model reloads as the same Model class with its config; files move to another context', async () => {
    const ctx = await context();
    const model = BBBLeNet(ctx, { imageSize: 16, classes: 4, layerType: 'bbb', priors: { prior_sigma: 0.3 }, seed: 2 });
    const bytes = await saveModel(model);
    const loaded = loadModel(ctx, bytes);
    expect(loaded).toBeInstanceOf(Model);
    expect((loaded as Model).config).toEqual(model.config);
    expect(loaded.modelOptions).toEqual({ inputShape: [1, 16, 16], seed: 2 });
    const a = await params(model);
    for (const [name, v] of await params(loaded)) expect(same(v, a.get(name)!), name).toBe(true);
    expect(Buffer.from(await saveModel(loaded)).equals(Buffer.from(bytes))).toBe(true);

    // The named model's config and its architecture must agree.
    const lenet = LeNet(ctx, { imageSize: 16, classes: 4 });
    const plain = decodeSafetensors(await saveModel(lenet)).metadata.config;
    refused(ctx, edit(bytes, (_, m) => (m.config = plain)), 'BAD_FILE', "the metadata 'config' describes lenet", 'describe another network');
    lenet.dispose();
    refused(ctx, edit(bytes, (_, m) => (m.config = m.config.replace('"layerType":"bbb"', '"layerType":"lrt"'))), 'BAD_FILE', "the metadata 'config' describes Bayesian lenet", 'the architecture and modelOptions describe another network');
    for (const m of [model, loaded]) m.dispose();
  });

  it('a regression network reloads as a Regressor whose predict gives the same RegressionPrediction', async () => {
    const ctx = await context();
    const model = bayesianRegressor(ctx, { features: 2, hidden: [8], head: 'homoscedastic', seed: 3 });
    const x = { data: Float32Array.from(randomArray(10, 5)), shape: [5, 2] };
    const before = await model.predict(x, { samples: 6, seed: 2 });
    const loaded = loadModel(ctx, await saveModel(model));
    expect(loaded).toBeInstanceOf(Regressor);
    expect(loaded.task).toBe('regression');
    const after = await (loaded as Regressor).predict(x, { samples: 6, seed: 2 });
    expect(after.mean).toEqual(before.mean);
    expect(after.epistemicVar).toEqual(before.epistemicVar);
    expect(after.aleatoricVar).toEqual(before.aleatoricVar);
    loaded.dispose();
    model.dispose();
  });

  it('saveModelFile writes atomically and loadModelFile reads it back', async () => {
    const ctx = await context();
    const model = residualNet(ctx);
    const dir = mkdtempSync(join(tmpdir(), 'bayesgpu-save-'));
    const path = join(dir, 'net.safetensors');
    await saveModelFile(path, model, { metadata: { epochs: '1' } });
    expect(readdirSync(dir)).toEqual(['net.safetensors']); // no temporary file left
    const loaded = await loadModelFile(ctx, path);
    const a = await params(model);
    for (const [name, v] of await params(loaded)) expect(same(v, a.get(name)!), name).toBe(true);
    expect(modelMetadata(new Uint8Array(readFileSync(path)))).toEqual({ epochs: '1' });
    await expect(loadModelFile(ctx, join(dir, 'missing.safetensors'))).rejects.toThrow(/missing.safetensors' does not exist/);
    for (const m of [model, loaded]) m.dispose();
  });

  it("files of the first format ('bayesgpu/1') load: the demo's first LeNet, and saveCheckpoint's with Adam state", async () => {
    const ctx = await context();
    // The 12-epoch LeNet the demo shipped until issue 12, written by bayesgpu 0.1 in the first format.
    const bytes = new Uint8Array(readFileSync(new URL('../fixtures/lenet_lrt_bayesgpu1.safetensors', import.meta.url)));
    const file = decodeSafetensors(bytes);
    expect(file.metadata.format).toBe('bayesgpu/1');
    const model = loadModel(ctx, bytes);
    expect(model).toBeInstanceOf(Model);
    expect((model as Model).config).toEqual(JSON.parse(file.metadata.config));
    for (const [name, v] of await params(model)) expect(same(v, file.tensors.get(name)!.data), name).toBe(true);
    expect(modelMetadata(bytes).format).toBeUndefined();
    model.dispose();

    const lenet = BBBLeNet(ctx, { imageSize: 16, classes: 2, seed: 3 });
    const adam = scramble(ctx, lenet);
    const old = await saveCheckpoint(lenet, { optimizer: adam, extra: { epochs: '2' } });
    const back = loadModel(ctx, old);
    const a = await params(lenet);
    for (const [name, v] of await params(back)) expect(same(v, a.get(name)!), name).toBe(true);
    const restored = loadOptimizer(back, old)!;
    expect(restored.step).toBe(17);
    for (const [name, s] of adam.state) expect(same(await restored.state.get(name)!.v.read(), await s.v.read()), name).toBe(true);
    expect(modelMetadata(old)).toEqual({ epochs: '2' });
    for (const m of [lenet, back]) m.dispose();
  });

  it('a state dict without metadata is refused by loadModel and loads with loadStateDict into a built model', async () => {
    const ctx = await context();
    const source = residualNet(ctx);
    scramble(ctx, source);
    const tensors: Record<string, TensorEntry> = {};
    for (const [name, v] of await params(source)) tensors[name] = { dtype: 'F32', shape: [...source.namedParameters().get(name)!.value.shape], data: v };
    const bytes = encodeSafetensors(tensors);
    refused(ctx, bytes, 'BAD_FILE', 'holds no architecture', 'loadStateDict(model, bytes)');
    const target = residualNet(ctx);
    loadStateDict(target, bytes);
    const a = await params(source);
    for (const [name, v] of await params(target)) expect(same(v, a.get(name)!), name).toBe(true);
    for (const m of [source, target]) m.dispose();
  });
});

/** A user's own layer: a Linear whose output is scaled by a fixed `alpha` (a container with one child). */
class ScaledLinear extends Module {
  readonly inner: Linear;
  constructor(readonly outFeatures: number, readonly alpha: number) {
    super();
    this.inner = new Linear(null, outFeatures);
    this.inner.name = 'inner';
  }
  override getConfig(): LayerConfig {
    return { type: 'test.ScaledLinear', outFeatures: this.outFeatures, alpha: this.alpha };
  }
  override children(): [string, Module][] {
    return [['inner', this.inner]];
  }
  override build(ctx: Context, input: readonly number[], state: BuildState): void {
    this.inner.build(ctx, input, state);
  }
  override outputShape(input: readonly number[]): number[] {
    return this.inner.outputShape(input);
  }
  override forward(x: Tensor, pass: Pass): Tensor {
    return scale((this.inner as Module).forward(x, pass), this.alpha);
  }
  override backward(dy: Tensor, pass: Pass): Tensor | null {
    return this.inner.backward(scale(dy, this.alpha), pass);
  }
}

describe('the layer registry', () => {
  it('a registered layer of its own round-trips', async () => {
    const ctx = await context();
    const make = () => new Sequential(ctx, { flatten: new Flatten(), mine: new ScaledLinear(5, 0.5), act: new Softplus(), out: new Linear(5, 2) }, { inputShape: [2, 3, 3], task: 'classification' });
    const model = make();
    scramble(ctx, model);
    // Not registered yet: the file could not load, so it is not written.
    await expect(saveModel(model)).rejects.toThrow(/saveModel: the layer at layers\[1\]: unknown layer type "test.ScaledLinear".*registerLayer/);
    registerLayer('test.ScaledLinear', (config) => {
      if (typeof config.outFeatures !== 'number' || typeof config.alpha !== 'number') throw new Error(`expected outFeatures and alpha numbers, got ${JSON.stringify(config)}`);
      return new ScaledLinear(config.outFeatures, config.alpha);
    });
    expect(layerTypes()).toContain('test.ScaledLinear');
    const bytes = await saveModel(model);
    const loaded = loadModel(ctx, bytes);
    expect(loaded.layers[1][1]).toBeInstanceOf(ScaledLinear);
    expect([...loaded.namedParameters().keys()]).toEqual(['mine.inner.weight', 'mine.inner.bias', 'out.weight', 'out.bias']);
    const a = await params(model);
    for (const [name, v] of await params(loaded)) expect(same(v, a.get(name)!), name).toBe(true);
    const x = ctx.tensor(randomArray(4 * 18, 5, -1, 1), [4, 2, 3, 3]);
    expect(same(await loaded.run(x).logits.read(), await model.run(x).logits.read())).toBe(true);
    // Its factory's refusal names the entry; a misshapen parameter of the probed layer is refused before allocating.
    const badAlpha = edit(bytes, (_, m) => (m.architecture = m.architecture.replace('"alpha":0.5', '"alpha":"half"')));
    refused(ctx, badAlpha, 'BAD_FILE', 'the layer at layers[1] (test.ScaledLinear)', 'expected outFeatures and alpha numbers');
    refused(ctx, edit(bytes, (t) => (t['mine.inner.weight'].shape = [5, 3, 6])), 'CHECKPOINT_MISMATCH', "tensor 'mine.inner.weight' has shape [5, 3, 6], the model expects [5, 18]");
    expect(() => registerLayer('Conv2d', () => new ReLU())).toThrow(/'Conv2d' is a built-in layer type/);
    // A factory that leaves a setting out would load another network: refused when saving.
    class Lossy extends ScaledLinear {
      override getConfig(): LayerConfig {
        return { ...super.getConfig(), type: 'test.Lossy' };
      }
    }
    registerLayer('test.Lossy', (config) => new Lossy(config.outFeatures as number, 1));
    const lossy = new Sequential(ctx, { flatten: new Flatten(), mine: new Lossy(5, 0.5) }, { inputShape: [2, 3, 3] });
    await expect(saveModel(lossy)).rejects.toThrow(/saveModel: the model's getConfig\(\) does not rebuild to itself/);
    for (const m of [model, loaded, lossy]) m.dispose();
  });

  it('layerFromConfig rebuilds every built-in layer from its getConfig and names a bad entry by its path', () => {
    const layers: Module[] = [
      new Conv2d(2, 3, [3, 1], { stride: 2, padding: [1, 0], dilation: 1, bias: false }), new Linear(4, 5), new ReLU(), new Softplus(),
      new BBBConv2d(1, 2, 3, { layerType: 'bbb', priors: { mixture: { pi: 0.5, sigma1: 1, sigma2: 0.01 } } }), new BBBLinear(null, 3),
      new BatchNorm2d(4, { momentum: 0.2, eps: 1e-3 }), new Flatten(),
      new Residual(new Sequential({ a: new Conv2d(2, 2, 3, { padding: 1 }) })),
    ];
    for (const layer of layers) {
      const copy = layerFromConfig(JSON.parse(JSON.stringify(layer.getConfig())));
      expect(copy.constructor).toBe(layer.constructor);
      expect(copy.getConfig()).toEqual(layer.getConfig());
    }
    const net = new Sequential({
      c: new Conv2d(1, 2, 3), r: new ReLU(), p: new Conv2d(2, 2, 1),
      block: new Residual(new Sequential({ conv: new Conv2d(2, 2, 3, { padding: 1 }), act: new ReLU() })),
    });
    const config = JSON.parse(JSON.stringify(net.getConfig()));
    const expectPath = (mutate: (c: any) => void, ...parts: string[]) => {
      const c = JSON.parse(JSON.stringify(config));
      mutate(c);
      expectRefused(() => layerFromConfig(c), 'INVALID_ARGUMENT', 'layerFromConfig: the layer at ', ...parts);
    };
    expectPath((c) => (c.layers[3][1].body.layers[0][1].type = 'Swish'), 'layers[3].body.layers[0]', 'unknown layer type "Swish"', 'the known types are BBBConv2d, BBBLinear, BatchNorm2d, Conv2d, Dropout', 'registerLayer');
    expectPath((c) => (c.layers[3][1].body.layers[0][1].kernel = '3'), 'layers[3].body.layers[0] (Conv2d)', "setting 'kernel' expected a whole number or a pair [h, w] of them, got \"3\"");
    expectPath((c) => (c.layers[0][1].bias = 'yes'), 'layers[0] (Conv2d)', "setting 'bias' expected true or false");
    expectPath((c) => (c.layers[0][1].outChannels = 0), 'layers[0] (Conv2d)', "argument 'outChannels' expected an integer >= 1, got 0");
    expectPath((c) => (c.layers[1][1].slope = 0.1), 'layers[1] (ReLU)', "unknown setting \"slope\"; ReLU takes no settings");
    expectPath((c) => (c.layers[3][1].body.layers = []), 'layers[3].body (Sequential)', "setting 'layers' expected a non-empty array");
    expectPath((c) => (c.layers[3][1].body.layers[1] = ['act']), 'layers[3].body (Sequential)', "entry 1 expected a [name, layer config] pair");
    expectPath((c) => (c.layers[3][1].body = 7), 'layers[3].body:', 'expected a layer config { type, ...settings }, got 7');
    expectPath((c) => (c.layers[2][0] = 'bad name'), 'the top (Sequential)', "layer names of letters, digits and '_'");
    expectPath((c) => (c.layers[3][1].body.layers[0][1] = { ...c.layers[3][1].body.layers[0][1], type: 'BBBConv2d', priors: 'wide' }), 'layers[3].body.layers[0] (BBBConv2d)', "setting 'priors' expected an object");
    expectPath((c) => (c.layers[0][1].type = '__proto__'), 'unknown layer type "__proto__"');
  });

  it('loadModel refuses a damaged architecture, bad options or tensors, allocating nothing', async () => {
    const ctx = await context();
    const model = residualNet(ctx);
    scramble(ctx, model);
    const bytes = await saveModel(model, { optimizer: new Adam(model.namedParameters(), { lr: 1e-3 }) });
    const arch = (f: (a: any) => void) => edit(bytes, (_, m) => {
      const a = JSON.parse(m.architecture);
      f(a);
      m.architecture = JSON.stringify(a);
    });
    const e = refused(ctx, arch((a) => (a.layers[2][1].body.layers[2][1].type = 'Swish')), 'BAD_FILE', 'the layer at layers[2].body.layers[2]', 'unknown layer type "Swish"');
    expect(e.message.match(/Swish/g)).toHaveLength(1);
    refused(ctx, arch((a) => (a.layers[2][1].body.layers[0][1].stride = [2, 'x'])), 'BAD_FILE', 'layers[2].body.layers[0] (Conv2d)', "setting 'stride'");
    refused(ctx, arch((a) => (a.layers[2][1].shortcut = null)), 'BAD_FILE', 'does not fit its input shape [1, 8, 8]', 'add a projection shortcut');
    refused(ctx, arch((a) => (a.layers[2][1].body.layers[0][1].outChannels = 1e12)), 'BAD_FILE', 'does not fit its input shape');
    refused(ctx, arch((a) => {
      for (const [, c] of [a.layers[2][1].body.layers[0], a.layers[2][1].body.layers[1], a.layers[2][1].body.layers[3]]) c[c.type === 'BatchNorm2d' ? 'channels' : 'outChannels'] = 2 ** 40;
      a.layers[2][1].body.layers[3][1].inChannels = 2 ** 40;
      a.layers[2][1].shortcut.outChannels = 2 ** 40;
      a.layers[4][1].inFeatures = 2 ** 44;
    }), 'CHECKPOINT_MISMATCH', "tensor 'block.body.conv1.weight' has shape [6, 4, 3, 3], the model expects [1099511627776, 4, 3, 3]");
    // Containers nested 5000 deep: refused by name, not by a stack overflow.
    const nested = `${'{"type":"Residual","body":'.repeat(5000)}{"type":"ReLU"}${',"shortcut":null}'.repeat(5000)}`;
    const deep = edit(bytes, (_, m) => (m.architecture = m.architecture.replace('["act1",{"type":"ReLU"}]', `["act1",${nested}]`)));
    expect(decodeSafetensors(deep).metadata.architecture.length).toBeGreaterThan(100_000);
    refused(ctx, deep, 'BAD_FILE', 'containers nested deeper than 100', 'layers[1].body.body.body');
    // An architecture asking for 2^40 channels allocates nothing on the CPU either before it is refused.
    const huge = arch((a) => {
      for (const [, c] of [a.layers[2][1].body.layers[0], a.layers[2][1].body.layers[1], a.layers[2][1].body.layers[3]]) c[c.type === 'BatchNorm2d' ? 'channels' : 'outChannels'] = 2 ** 40;
    });
    const m = metered(() => loadModel(ctx, huge));
    expect(m.error).toBeInstanceOf(BayesError);
    expect(m.largest, 'largest typed array allocated').toBeLessThanOrEqual(huge.length);
    refused(ctx, arch((a) => (a.type = 'Residual')), 'BAD_FILE', 'the layer at the top (Residual)', 'unknown setting "layers"');
    refused(ctx, edit(bytes, (_, m) => (m.architecture = '{"type":')), 'BAD_FILE', "the metadata 'architecture' is not valid JSON");
    refused(ctx, edit(bytes, (_, m) => delete m.architecture), 'BAD_FILE', "its metadata has no 'architecture'");
    refused(ctx, edit(bytes, (_, m) => (m.modelOptions = '{"inputShape":[1,8]}')), 'BAD_FILE', 'does not fit its input shape [1, 8]');
    refused(ctx, edit(bytes, (_, m) => (m.modelOptions = '{"inputShape":[1,8,8],"task":"ranking"}')), 'BAD_FILE', "modelOptions' has task \"ranking\"");
    refused(ctx, edit(bytes, (_, m) => (m.modelOptions = '{"inputShape":[1,8,8],"preprocessing":{"std":[0]}}')), 'BAD_FILE', 'preprocessing.std [0], expected an array of positive numbers');
    refused(ctx, edit(bytes, (_, m) => (m.format = 'bayesgpu/9')), 'BAD_FILE', 'written by a newer bayesgpu');
    refused(ctx, edit(bytes, (t) => (t['block.body.bn.running_var'].data[3] = NaN)), 'BAD_FILE', "tensor 'block.body.bn.running_var' holds NaN at index 3", 'must be finite');
    refused(ctx, edit(bytes, (t) => delete t['block.shortcut.bias']), 'CHECKPOINT_MISMATCH', "tensor 'block.shortcut.bias' is missing from the file (the model expects shape [6])");
    refused(ctx, edit(bytes, (t) => (t['block.body.conv2.bias'] = { dtype: 'F32', shape: [6], data: new Float32Array(6) })), 'CHECKPOINT_MISMATCH', "tensor 'block.body.conv2.bias' in the file is not a parameter of the model (model)");
    refused(ctx, edit(bytes, (t) => (t['fc.W_mu'].shape = [96, 3])), 'CHECKPOINT_MISMATCH', "tensor 'fc.W_mu' has shape [96, 3], the model expects [3, 96]");
    refused(ctx, edit(bytes, (t) => (t['optimizer.v.fc.W_rho'].data[0] = -1)), 'BAD_FILE', "'optimizer.v.fc.W_rho' holds -1 at index 0", 'never negative');
    refused(ctx, edit(bytes, (t) => (t['optimizer.m.block.body.bn.running_mean'] = { dtype: 'F32', shape: [6], data: new Float32Array(6) })), 'CHECKPOINT_MISMATCH', 'not a trainable parameter');
    expectRefused(() => loadOptimizer(model, edit(bytes, (t) => delete t['optimizer.m.conv1.bias'])), 'CHECKPOINT_MISMATCH', "loadOptimizer: the file has Adam state, but tensor 'optimizer.m.conv1.bias' is missing");
    await expect(saveModel(model, { metadata: { architecture: 'mine' } })).rejects.toThrow(/saveModel: argument 'options.metadata' expected keys other than the library's own/);
    await expect(saveModel(model, { metadata: { epochs: 3 as unknown as string } })).rejects.toThrow(/options.metadata.epochs' expected a string/);
    await expect(saveModel(new Sequential({ a: new ReLU() }))).rejects.toThrow(/saveModel: argument 'model' expected a model/);
    const other = residualNet(ctx);
    await expect(saveModel(model, { optimizer: new Adam(other.namedParameters(), { lr: 1e-3 }) })).rejects.toThrow(/an optimizer of another model/);
    // The good file still loads after all that.
    const loaded = loadModel(ctx, bytes);
    const a = await params(model);
    for (const [name, v] of await params(loaded)) expect(same(v, a.get(name)!), name).toBe(true);
    expect(() => loadCheckpoint(ctx, bytes)).toThrow(/loadCheckpoint: the file holds a network of its own.*load it with loadModel/);
    for (const m of [model, loaded, other]) m.dispose();
  });
});

// ---------------------------------------------------------------------------------------------
// Residual's backward against central finite differences of a float64 reference

const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));

describe('Residual backward', () => {
  const N = 2;
  const C = 2;
  const S = 6;
  for (const projection of [false, true]) {
    it(`${projection ? 'a 1x1 stride-2 projection shortcut' : 'the identity shortcut'}: dx and every parameter gradient match central differences of float64`, async () => {
      const ctx = await context();
      const stride = projection ? 2 : 1;
      const OUT = projection ? 3 : C;
      const model = new Sequential(ctx, {
        block: new Residual(new Sequential({
          conv1: new Conv2d(C, OUT, 3, { stride, padding: 1 }),
          act: new Softplus(),
          conv2: new Conv2d(OUT, OUT, 3, { padding: 1 }),
        }), { shortcut: projection ? new Conv2d(C, OUT, 1, { stride }) : null }),
      }, { inputShape: [C, S, S] });
      const O = S / stride;
      const p: Record<string, Float64Array> = {};
      let seed = 10;
      for (const [name, param] of model.namedParameters()) {
        p[name] = randomArray(param.value.size, seed++, -0.5, 0.5);
        ctx.write(param.value, p[name]);
      }
      const xs = randomArray(N * C * S * S, 3, -1, 1);
      const g = randomArray(N * OUT * O * O, 4, -1, 1); // L = <y, g>, so dL/dy = g
      const loss = (x: Float64Array): number => {
        const h = conv2dRef({ x: [N, C, S, S], w: [OUT, C, 3, 3], stride, padding: 1 }, x, p['block.body.conv1.weight'], p['block.body.conv1.bias']).map(softplus);
        const y = conv2dRef({ x: [N, OUT, O, O], w: [OUT, OUT, 3, 3], padding: 1 }, h, p['block.body.conv2.weight'], p['block.body.conv2.bias']);
        const shortcut = projection ? conv2dRef({ x: [N, C, S, S], w: [OUT, C, 1, 1], stride }, x, p['block.shortcut.weight'], p['block.shortcut.bias']) : x;
        let sum = 0;
        for (let i = 0; i < y.length; i++) sum += (y[i] + shortcut[i]) * g[i];
        return sum;
      };
      const x64 = Float64Array.from(xs);
      const central = (v: Float64Array) => Float64Array.from(v, (old, i) => {
        const h = 1e-6;
        v[i] = old + h;
        const up = loss(x64);
        v[i] = old - h;
        const down = loss(x64);
        v[i] = old;
        return (up - down) / (2 * h);
      });

      model.eval();
      const pass = { ...model.makePass({ sample: false }), needInputGrad: true };
      const y = model.forward(ctx.tensor(xs, [N, C, S, S]), pass);
      expect([...y.shape]).toEqual([N, OUT, O, O]);
      const dx = model.backward(ctx.tensor(g, [N, OUT, O, O]), pass)!;
      const checks: [string, ArrayLike<number>, Float64Array][] = [['dx', await dx.read(), central(x64)]];
      for (const [name, param] of model.namedParameters()) checks.push([name, await param.grad!.read(), central(p[name])]);
      let scaleOf = 0;
      for (const [, , fd] of checks) for (const v of fd) scaleOf = Math.max(scaleOf, Math.abs(v));
      for (const [name, got, fd] of checks) {
        // float32 sums of up to 36 products against float64 differences with step 1e-6 (whose own
        // error is about 1e-10 / 1e-6 relative): 1e-5 of the largest gradient.
        for (let i = 0; i < fd.length; i++) expect(Math.abs(got[i] - fd[i]) / scaleOf, `${name}[${i}]`).toBeLessThan(1e-5);
      }
      model.dispose();
    });
  }
});
