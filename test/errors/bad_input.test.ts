/**
 * Every bad input named: one table of bad calls across layers, models, ops, fit, predict, the data
 * loaders, checkpoints and the CLI. Each row asserts the BayesError code and that the message names
 * the argument, what was expected and what was given; a row on a model also asserts that the
 * model's parameters are unchanged (each check runs before any GPU work). CLI rows also assert the
 * exit code (2 for bad arguments and bad files, 1 for failures while running) and that stderr holds
 * one line and no stack trace.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BayesError, type BayesErrorCode } from '../../src/errors.js';
import type { Context } from '../../src/gpu/context.js';
import type { Tensor } from '../../src/gpu/tensor.js';
import { BBBConv2d, BBBLinear } from '../../src/nn/bayes.js';
import { BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d } from '../../src/nn/layers.js';
import { BBBLeNet, LeNet, type Model } from '../../src/nn/models.js';
import type { Sequential } from '../../src/nn/sequential.js';
import { add, scale, tile } from '../../src/ops/elementwise.js';
import { conv2dForward } from '../../src/ops/conv2d.js';
import { linearForward, matmul } from '../../src/ops/linear.js';
import { logMeanExp, nllLoss } from '../../src/ops/loss.js';
import { sumInto } from '../../src/ops/reduce.js';
import { Adam } from '../../src/train/adam.js';
import { type FloatDataset, evaluate, fit } from '../../src/train/fit.js';
import { trainStep } from '../../src/train/step.js';
import { predictiveDistribution } from '../../src/ops/uncertainty.js';
import type { PredictOptions } from '../../src/nn/predict.js';
import { loadCifar, loadMnist } from '../../src/data/node_files.js';
import { decodeMnist } from '../../src/data/mnist.js';
import { parseIdx } from '../../src/data/idx.js';
import { parseCifar10 } from '../../src/data/cifar.js';
import { toFloatImages } from '../../src/data/preprocess.js';
import { batches, splitTrainValid } from '../../src/data/batches.js';
import { loadModel, loadOptimizer, loadStateDict, saveModel } from '../../src/io/checkpoint.js';
import { loadModelFile } from '../../src/io/checkpoint_files.js';
import { encodeSafetensors } from '../../src/io/safetensors.js';
import { describeFailure } from '../../src/cli/main.js';
import { cli } from '../cli/run_cli.js';
import { context } from '../helpers.js';

interface Row {
  name: string;
  code: BayesErrorCode;
  /** Substrings of the message: the argument, what was expected, what was given. */
  names: [argument: string, expected: string, given: string];
  run: () => unknown;
  /** The model whose parameters must be unchanged by the failed call. */
  model?: () => Sequential;
}

interface CliRow {
  name: string;
  args: string[];
  /** The BayesError code behind the message (null: the CLI's own usage line, or Node's parseArgs). */
  code: BayesErrorCode | null;
  exit: number;
  names: [argument: string, expected: string, given: string];
}

async function snapshot(model: Sequential): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) out.set(name, (await p.value.read()) as Float32Array);
  return out;
}

/** The error a call throws (sync or async), or fails the test. */
async function thrown(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to throw, it returned');
}

function dataset(n: number, shape: [number, number, number] = [1, 32, 32], classes = 10): FloatDataset {
  const per = shape[0] * shape[1] * shape[2];
  return { x: new Float32Array(n * per).fill(0.5), labels: Uint8Array.from({ length: n }, (_, i) => i % classes), count: n, shape, classes };
}

/** An IDX file: `type` byte, big-endian dims, then `body` bytes. */
function idx(type: number, dims: number[], body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + body.length);
  const view = new DataView(out.buffer);
  out[2] = type;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(body, 4 + 4 * dims.length);
  return out;
}

describe('every bad input is named', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'bayesgpu-bad-input-'));
  let ctx: Context;
  let lenet: Model;
  let adam: Adam;
  let x: Tensor; // a good batch [2, 1, 32, 32]
  let labels: Tensor; // its labels [2] u32
  let good: Uint8Array; // a good checkpoint of lenet (with Adam state)
  const paths = { garbage: '', missing: '', noAdam: '', truncated: '' };

  beforeAll(async () => {
    ctx = await context();
    lenet = BBBLeNet(ctx, { seed: 1 });
    adam = new Adam(lenet, { lr: 1e-3 });
    x = ctx.keep(ctx.tensor(new Float32Array(2 * 1024).fill(0.5), [2, 1, 32, 32]));
    labels = ctx.keep(ctx.tensor([3, 7], [2], 'u32'));
    good = await saveModel(lenet, { optimizer: adam, metadata: { epochs: '1' } });
    paths.garbage = join(scratch, 'garbage.safetensors');
    writeFileSync(paths.garbage, 'this is not a safetensors file at all');
    paths.truncated = join(scratch, 'truncated.safetensors');
    writeFileSync(paths.truncated, good.subarray(0, 100));
    paths.missing = join(scratch, 'no-such.safetensors');
    paths.noAdam = join(scratch, 'no-adam.safetensors');
    writeFileSync(paths.noAdam, await saveModel(lenet, { metadata: { epochs: '1' } }));
  });
  afterAll(() => {
    adam.dispose();
    lenet.dispose();
    x.dispose();
    labels.dispose();
    rmSync(scratch, { recursive: true, force: true });
  });

  /** The good checkpoint with its tensors edited. */
  function edited(edit: (tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>, metadata: Record<string, string>) => void): Uint8Array {
    const m = lenet.namedParameters();
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const [name, p] of m) tensors[name] = { dtype: 'F32', shape: [...p.value.shape], data: new Float32Array(p.value.size) };
    const metadata: Record<string, string> = { format: 'bayesgpu/1', config: JSON.stringify(lenet.config) };
    edit(tensors, metadata);
    return encodeSafetensors(tensors, metadata);
  }

  const rows: Row[] = [
    // ------------------------------------------------------------------ layers
    { name: 'Conv2d inChannels 0', code: 'INVALID_ARGUMENT', names: ["'inChannels'", 'an integer >= 1', 'got 0'], run: () => new Conv2d(0, 6, 5) },
    { name: 'Conv2d stride 0', code: 'INVALID_ARGUMENT', names: ["'stride'", 'an integer >= 1', 'got 0'], run: () => new Conv2d(1, 6, 5, { stride: 0 }) },
    { name: 'Conv2d kernel of three sizes', code: 'INVALID_ARGUMENT', names: ["'kernel'", 'a pair [h, w]', 'got [5, 5, 5]'], run: () => new Conv2d(1, 6, [5, 5, 5] as unknown as [number, number]) },
    { name: 'Linear outFeatures 2.5', code: 'INVALID_ARGUMENT', names: ["'outFeatures'", 'an integer >= 1', 'got 2.5'], run: () => new Linear(10, 2.5) },
    { name: 'MaxPool2d padding -1', code: 'INVALID_ARGUMENT', names: ["'padding'", 'an integer >= 0', 'got -1'], run: () => new MaxPool2d(2, { padding: -1 }) },
    { name: 'Dropout p 1', code: 'INVALID_ARGUMENT', names: ["'p'", 'a probability in [0, 1)', 'got 1'], run: () => new Dropout(1) },
    { name: 'BatchNorm2d momentum 2', code: 'INVALID_ARGUMENT', names: ["'momentum'", 'a number in [0, 1]', 'got 2'], run: () => new BatchNorm2d(4, { momentum: 2 }) },
    { name: "BBBConv2d layerType 'gaussian'", code: 'INVALID_ARGUMENT', names: ["'layerType'", "one of 'lrt' | 'bbb'", 'got "gaussian"'], run: () => new BBBConv2d(1, 6, 5, { layerType: 'gaussian' as 'lrt' }) },
    { name: 'BBBLinear prior_sigma 0', code: 'INVALID_ARGUMENT', names: ["'priors.prior_sigma'", 'a positive number', 'got 0'], run: () => new BBBLinear(10, 2, { priors: { prior_sigma: 0 } }) },
    { name: 'BBBLinear posterior_rho_initial [-5]', code: 'INVALID_ARGUMENT', names: ["'priors.posterior_rho_initial'", '[mean, std] with std >= 0', 'got [-5]'], run: () => new BBBLinear(10, 2, { priors: { posterior_rho_initial: [-5] as unknown as [number, number] } }) },
    { name: 'BBBLinear mixture pi 1.5', code: 'INVALID_ARGUMENT', names: ["'priors.mixture.pi'", 'a number in [0, 1]', 'got 1.5'], run: () => new BBBLinear(10, 2, { priors: { mixture: { pi: 1.5, sigma1: 1, sigma2: 0.01 } } }) },

    // ------------------------------------------------------------------ models
    { name: 'BBBLeNet inChannels 0', code: 'INVALID_ARGUMENT', names: ["'inChannels'", 'an integer >= 1', 'got 0'], run: () => BBBLeNet(ctx, { inChannels: 0 }) },
    { name: "BBBLeNet layerType 'mc'", code: 'INVALID_ARGUMENT', names: ["'layerType'", "one of 'lrt' | 'bbb'", 'got "mc"'], run: () => BBBLeNet(ctx, { layerType: 'mc' as 'lrt' }) },
    { name: "BBBLeNet activation 'tanh'", code: 'INVALID_ARGUMENT', names: ["'activation'", "one of 'softplus' | 'relu'", 'got "tanh"'], run: () => BBBLeNet(ctx, { activation: 'tanh' as 'relu' }) },
    { name: 'LeNet dropout 1', code: 'INVALID_ARGUMENT', names: ["'dropout'", 'a probability in [0, 1)', 'got 1'], run: () => LeNet(ctx, { dropout: 1 }) },
    { name: 'BBBLeNet imageSize 8 (too small for its layers)', code: 'SHAPE_MISMATCH', names: ["layer 'conv2'", 'at least as large as the dilated kernel 5x5', 'got 2x2'], run: () => BBBLeNet(ctx, { imageSize: 8 }) },
    { name: 'model.run x with 3 channels', code: 'SHAPE_MISMATCH', names: ["'x'", '[B, 1, 32, 32]', 'got [2, 3, 32, 32]'], model: () => lenet, run: () => ctx.scope(() => lenet.run(ctx.zeros([2, 3, 32, 32]))) },
    { name: 'model.run samples 0', code: 'INVALID_ARGUMENT', names: ["'samples'", 'an integer >= 1', 'got 0'], model: () => lenet, run: () => lenet.run(x, { samples: 0 }) },
    { name: 'model.run seed -1', code: 'INVALID_ARGUMENT', names: ["'seed'", 'an integer >= 0', 'got -1'], model: () => lenet, run: () => lenet.run(x, { seed: -1 }) },

    // ---------------------------------------------------------- training steps
    { name: 'trainStep labels f32', code: 'INVALID_ARGUMENT', names: ["'labels'", 'dtype u32', 'got f32'], model: () => lenet, run: () => ctx.scope(() => trainStep(lenet, adam, x, ctx.tensor([3, 7], [2]) as unknown as Tensor, { samples: 1, beta: 0.1, trainSize: 100, seed: 0 })) },
    { name: 'trainStep 3 labels for 2 images', code: 'SHAPE_MISMATCH', names: ["'labels'", '[2] (one label per image)', 'got [3]'], model: () => lenet, run: () => ctx.scope(() => trainStep(lenet, adam, x, ctx.tensor([1, 2, 3], [3], 'u32'), { samples: 1, beta: 0.1, trainSize: 100, seed: 0 })) },
    { name: 'trainStep beta -1', code: 'INVALID_ARGUMENT', names: ["'beta'", 'a number >= 0', 'got -1'], model: () => lenet, run: () => trainStep(lenet, adam, x, labels, { samples: 1, beta: -1, trainSize: 100, seed: 0 }) },
    { name: 'trainStep trainSize 0', code: 'INVALID_ARGUMENT', names: ["'trainSize'", 'an integer >= 1', 'got 0'], model: () => lenet, run: () => trainStep(lenet, adam, x, labels, { samples: 1, beta: 0.1, trainSize: 0, seed: 0 }) },
    {
      name: 'trainStep on a disposed batch', code: 'DISPOSED_TENSOR', names: ["'x'", 'disposed tensor', 'shape [2, 1, 32, 32]'], model: () => lenet,
      run: () => {
        const gone = ctx.tensor(new Float32Array(2 * 1024), [2, 1, 32, 32]);
        gone.dispose();
        return trainStep(lenet, adam, gone, labels, { samples: 1, beta: 0.1, trainSize: 100, seed: 0 });
      },
    },
    { name: 'Adam lr 0', code: 'INVALID_ARGUMENT', names: ["'lr'", 'a positive number', 'got 0'], run: () => new Adam(lenet, { lr: 0 }) },

    // --------------------------------------------------------------------- ops
    { name: 'conv2dForward weights for 3 input channels', code: 'SHAPE_MISMATCH', names: ["'w'", '1', '[6, 3, 5, 5]'], run: () => ctx.scope(() => conv2dForward(x, ctx.zeros([6, 3, 5, 5]), null)) },
    { name: 'linearForward w of 12 features for x of 10', code: 'SHAPE_MISMATCH', names: ["'w'", '[out, 10]', 'got [3, 12]'], run: () => ctx.scope(() => linearForward(ctx.zeros([4, 10]), ctx.zeros([3, 12]), null)) },
    { name: 'matmul inner dimensions 4 and 5', code: 'SHAPE_MISMATCH', names: ["'b'", '[4, N]', 'got [5, 2]'], run: () => ctx.scope(() => matmul(ctx.zeros([3, 4]), ctx.zeros([5, 2]))) },
    { name: 'add shapes [3] and [4]', code: 'SHAPE_MISMATCH', names: ["'b'", '[3] (the shape of a)', 'got [4]'], run: () => ctx.scope(() => add(ctx.zeros([3]), ctx.zeros([4]))) },
    { name: 'scale by NaN', code: 'INVALID_ARGUMENT', names: ["'alpha'", 'a finite number', 'got NaN'], run: () => ctx.scope(() => scale(ctx.zeros([3]), NaN)) },
    { name: 'tile 0 times', code: 'INVALID_ARGUMENT', names: ["'times'", 'an integer >= 1', 'got 0'], run: () => ctx.scope(() => tile(ctx.zeros([3]), 0)) },
    { name: 'logMeanExp 5 rows for 2 samples', code: 'SHAPE_MISMATCH', names: ["'logp'", '[2 * B, C]', 'got [5, 10]'], run: () => ctx.scope(() => logMeanExp(ctx.zeros([5, 10]), { samples: 2 })) },
    { name: 'nllLoss 3 labels for 2 rows', code: 'SHAPE_MISMATCH', names: ["'labels'", '[2]', '[3]'], run: () => ctx.scope(() => nllLoss(ctx.zeros([2, 10]), ctx.tensor([1, 2, 3], [3], 'u32'))) },
    { name: 'sumInto index past the end', code: 'INVALID_ARGUMENT', names: ["'index'", 'an integer < 2 (the size of out)', 'got 2'], run: () => ctx.scope(() => sumInto(ctx.zeros([3]), ctx.zeros([2]), { index: 2 })) },

    // --------------------------------------------------------------------- fit
    { name: 'fit epochs 0', code: 'INVALID_ARGUMENT', names: ["'epochs'", 'an integer >= 1', 'got 0'], model: () => lenet, run: () => fit(lenet, dataset(8), { epochs: 0, batchSize: 4, optimizer: adam }) },
    { name: 'fit batchSize 1.5', code: 'INVALID_ARGUMENT', names: ["'batchSize'", 'an integer >= 1', 'got 1.5'], model: () => lenet, run: () => fit(lenet, dataset(8), { epochs: 1, batchSize: 1.5, optimizer: adam }) },
    { name: 'fit validFraction 1', code: 'INVALID_ARGUMENT', names: ["'validFraction'", 'a fraction in [0, 1)', 'got 1'], model: () => lenet, run: () => fit(lenet, dataset(8), { epochs: 1, batchSize: 4, validFraction: 1, optimizer: adam }) },
    { name: 'fit initialEpoch = epochs', code: 'INVALID_ARGUMENT', names: ["'initialEpoch'", 'an integer below epochs (2)', 'got 2'], model: () => lenet, run: () => fit(lenet, dataset(8), { epochs: 2, initialEpoch: 2, batchSize: 4, optimizer: adam }) },
    { name: 'fit on 3-channel images', code: 'SHAPE_MISMATCH', names: ["'data'", 'the model expects [1, 32, 32]', 'shape [3, 32, 32]'], model: () => lenet, run: () => fit(lenet, dataset(8, [3, 32, 32]), { epochs: 1, batchSize: 4, optimizer: adam }) },
    { name: 'evaluate batchSize 0', code: 'INVALID_ARGUMENT', names: ["'batchSize'", 'an integer >= 1', 'got 0'], model: () => lenet, run: () => evaluate(lenet, dataset(4), { batchSize: 0, samples: 1 }) },

    // ----------------------------------------------------------------- predict
    { name: 'predict samples 0', code: 'INVALID_ARGUMENT', names: ["'samples'", 'an integer >= 1', 'got 0'], model: () => lenet, run: () => lenet.predict(x, { samples: 0 }) },
    { name: "predict method 'probit'", code: 'INVALID_ARGUMENT', names: ["'method'", "one of 'softmax' | 'normalized'", 'got "probit"'], model: () => lenet, run: () => lenet.predict(x, { samples: 2, method: 'probit' as 'softmax' }) },
    { name: 'predict seed 2^32', code: 'INVALID_ARGUMENT', names: ["'seed'", 'an integer <= 2^32 - 1', 'got 4294967296'], model: () => lenet, run: () => lenet.predict(x, { samples: 2, seed: 2 ** 32 }) },
    { name: 'predict x of 28 x 28 images', code: 'SHAPE_MISMATCH', names: ["'input'", '[B, 1, 32, 32]', 'got [2, 1, 28, 28]'], model: () => lenet, run: () => ctx.scope(() => lenet.predict(ctx.zeros([2, 1, 28, 28]), { samples: 2 })) },
    { name: 'predict a bare Float32Array', code: 'INVALID_ARGUMENT', names: ["'input'", 'a Tensor [B, 1, 32, 32]', 'got Float32Array (give the values their shape: { data, shape: [B, 1, 32, 32] })'], model: () => lenet, run: () => lenet.predict(new Float32Array(1024) as unknown as Tensor) },
    { name: 'predict unknown option', code: 'INVALID_ARGUMENT', names: ["'options'", 'only the keys samples', "unknown key 'sample_count'"], model: () => lenet, run: () => lenet.predict(x, { sample_count: 2 } as PredictOptions) },
    { name: 'predict data set x too short', code: 'SHAPE_MISMATCH', names: ["'input.x'", 'a Float32Array of 2048 values', 'got 100'], model: () => lenet, run: () => lenet.predict({ x: new Float32Array(100), count: 2, shape: [1, 32, 32] }, { samples: 2 }) },
    { name: 'predict data set batchSize 0', code: 'INVALID_ARGUMENT', names: ["'batchSize'", 'an integer >= 1', 'got 0'], model: () => lenet, run: () => lenet.predict(dataset(2), { samples: 2, batchSize: 0 }) },
    { name: 'predictiveDistribution logits of rank 3', code: 'SHAPE_MISMATCH', names: ["'logits'", '[T * B, C]', 'got [2, 2, 10]'], run: () => ctx.scope(() => predictiveDistribution(ctx.zeros([2, 2, 10]), { samples: 2 })) },

    // ------------------------------------------------------------ data loaders
    { name: "loadMnist split 'validation'", code: 'INVALID_ARGUMENT', names: ["'split'", "one of 'train' | 'test'", 'got "validation"'], run: () => loadMnist({ split: 'validation' as 'train' }) },
    { name: 'loadMnist dataDir without the files', code: 'DATA_NOT_FOUND', names: ["'dataDir'", 'train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]', `got ${JSON.stringify(join(tmpdir(), 'no-mnist-here'))}`], run: () => loadMnist({ split: 'train', dataDir: join(tmpdir(), 'no-mnist-here') }) },
    { name: "loadCifar kind 'cifar-20'", code: 'INVALID_ARGUMENT', names: ["'kind'", "one of 'cifar-10' | 'cifar-100'", 'got "cifar-20"'], run: () => loadCifar({ kind: 'cifar-20' as 'cifar-10', split: 'train' }) },
    { name: 'decodeMnist truncated images', code: 'BAD_FILE', names: ['img.idx', 'needs 1568 data bytes', 'file has 100'], run: () => decodeMnist(idx(0x08, [2, 28, 28], new Uint8Array(100)), idx(0x08, [2], new Uint8Array(2)), { names: { images: 'img.idx', labels: 'lab.idx' } }) },
    { name: 'decodeMnist label 12', code: 'BAD_FILE', names: ['lab.idx', 'a class 0..9', 'label 12 at index 1'], run: () => decodeMnist(idx(0x08, [2, 28, 28], new Uint8Array(1568)), idx(0x08, [2], Uint8Array.from([1, 12])), { names: { images: 'img.idx', labels: 'lab.idx' } }) },
    { name: 'parseIdx bad magic', code: 'BAD_FILE', names: ['f.idx', 'expected 00 00 <type> <dims>', 'got 50 4b 03 04'], run: () => parseIdx(Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0]), 'f.idx') },
    { name: 'parseCifar10 CIFAR-100 records', code: 'BAD_FILE', names: ['b.bin', 'CIFAR-10 records of 3073 bytes', 'size 6148 bytes'], run: () => parseCifar10(new Uint8Array(2 * 3074), 'b.bin') },
    { name: 'toFloatImages too few pixels', code: 'SHAPE_MISMATCH', names: ["'images'", '1568', '1000'], run: () => toFloatImages(new Uint8Array(1000), 2, 1, 28, 28) },
    { name: 'splitTrainValid validFraction 1.5', code: 'INVALID_ARGUMENT', names: ["'validFraction'", 'a number in [0, 1)', 'got 1.5'], run: () => splitTrainValid(10, 1.5) },
    { name: 'batches batchSize 0', code: 'INVALID_ARGUMENT', names: ["'batchSize'", 'an integer >= 1', 'got 0'], run: () => batches({ images: new Uint8Array(4), labels: [0, 1, 2, 3], count: 4, channels: 1, height: 1, width: 1 }, { batchSize: 0 }) },

    // ------------------------------------------------------------- checkpoints
    { name: 'loadModel of text bytes', code: 'BAD_FILE', names: ['header length', 'bytes follow the length field', '2338328219631577204'], run: () => loadModel(ctx, new TextEncoder().encode('this is not a safetensors file')) },
    { name: 'loadModel truncated to 4 bytes', code: 'BAD_FILE', names: ['truncated', 'the 8-byte header length', '4 bytes'], run: () => loadModel(ctx, good.subarray(0, 4)) },
    {
      name: 'loadModel with fc3.W_mu renamed', code: 'CHECKPOINT_MISMATCH', names: ["'fc3.W_mu'", 'the model expects shape [10, 84]', 'missing from the file'],
      run: () => loadModel(ctx, edited((t) => {
        t['fc3.W_mux'] = t['fc3.W_mu'];
        delete t['fc3.W_mu'];
      })),
    },
    { name: 'loadModel fc3.W_mu transposed', code: 'CHECKPOINT_MISMATCH', names: ["'fc3.W_mu'", 'the model expects [10, 84]', 'has shape [84, 10]'], run: () => loadModel(ctx, edited((t) => (t['fc3.W_mu'] = { dtype: 'F32', shape: [84, 10], data: new Float32Array(840) }))) },
    { name: 'loadModel with an extra tensor', code: 'CHECKPOINT_MISMATCH', names: ["'fc4.W_mu'", 'expected only: conv1.W_mu', 'not a parameter of the model'], run: () => loadModel(ctx, edited((t) => (t['fc4.W_mu'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) }))) },
    { name: "loadModel config of model 'resnet'", code: 'BAD_FILE', names: ["'model'", "one of 'lenet' | 'alexnet' | '3conv3fc'", 'got "resnet"'], run: () => loadModel(ctx, edited((_, m) => (m.config = JSON.stringify({ ...lenet.config, model: 'resnet' })))) },
    { name: 'loadModel of a state dict without metadata', code: 'BAD_FILE', names: ['holds no architecture', 'no bayesgpu metadata', 'loadStateDict(model, bytes)'], run: () => loadModel(ctx, encodeSafetensors({ 'fc3.W_mu': { dtype: 'F32', shape: [10, 84], data: new Float32Array(840) } })) },
    {
      name: 'loadStateDict with a wrong shape into a model', code: 'CHECKPOINT_MISMATCH', names: ["'conv1.W_mu'", 'the model expects [6, 1, 5, 5]', 'has shape [6, 3, 5, 5]'], model: () => lenet,
      run: () => {
        const tensors = new Map([...lenet.namedParameters()].map(([name, p]) => [name, { shape: [...p.value.shape], data: new Float32Array(p.value.size).fill(9) }]));
        tensors.set('conv1.W_mu', { shape: [6, 3, 5, 5], data: new Float32Array(450) });
        loadStateDict(lenet, tensors);
      },
    },
    {
      name: 'loadOptimizer without Adam moments', code: 'CHECKPOINT_MISMATCH', names: ["'optimizer.m.conv1.W_mu'", 'the file has Adam state', 'missing from it'],
      run: () => loadOptimizer(lenet, edited((t, m) => {
        m.optimizer = JSON.stringify({ kind: 'adam', step: 1, lr: 1e-3 });
        for (const [name, p] of lenet.namedParameters()) t[`optimizer.v.${name}`] = { dtype: 'F32', shape: [...p.value.shape], data: new Float32Array(p.value.size) };
      })),
    },
    { name: 'loadModelFile of a missing file', code: 'DATA_NOT_FOUND', names: ['readFile', paths.missing || 'no-such.safetensors', 'does not exist'], run: () => loadModelFile(ctx, paths.missing) },
  ];

  it(`has at least 40 rows (${rows.length})`, () => expect(rows.length).toBeGreaterThanOrEqual(40));

  for (const row of rows) {
    it(row.name, async () => {
      const before = row.model ? await snapshot(row.model()) : null;
      const e = await thrown(row.run);
      expect(e, String(e)).toBeInstanceOf(BayesError);
      const err = e as BayesError;
      expect(err.code, err.message).toBe(row.code);
      for (const part of row.names) expect(err.message).toContain(part);
      if (before) {
        const after = await snapshot(row.model!());
        for (const [name, values] of before) expect(after.get(name), `${name} changed`).toEqual(values);
      }
    });
  }

  const cliRows: CliRow[] = [
    { name: 'unknown option', args: ['train', '--learning-rate', '0.1'], code: null, exit: 2, names: ["'--learning-rate'", 'bayesgpu train --help lists the options', 'Unknown option'] },
    { name: 'unknown command with --help', args: ['fit', '--help'], code: null, exit: 2, names: ['command', 'expected train, eval or predict', 'unknown command "fit"'] },
    { name: 'no command', args: [], code: null, exit: 2, names: ['command', 'expected train, eval or predict', 'no command given'] },
    { name: '--epochs 0', args: ['train', '--epochs', '0'], code: 'INVALID_ARGUMENT', exit: 2, names: ["'--epochs'", 'an integer >= 1', 'got "0"'] },
    { name: '--lr ""', args: ['train', '--lr', ''], code: 'INVALID_ARGUMENT', exit: 2, names: ["'--lr'", 'a number > 0', 'got ""'] },
    { name: '--valid-fraction 1', args: ['train', '--valid-fraction', '1'], code: 'INVALID_ARGUMENT', exit: 2, names: ["'--valid-fraction'", 'a fraction in [0, 1)', 'got "1"'] },
    { name: '--dataset imagenet', args: ['train', '--dataset', 'imagenet'], code: 'INVALID_ARGUMENT', exit: 2, names: ["'--dataset'", 'mnist|fashion-mnist|cifar10|cifar100', 'got "imagenet"'] },
    { name: '--lr-schedule cosine', args: ['train', '--lr-schedule', 'cosine'], code: 'INVALID_ARGUMENT', exit: 2, names: ["'--lr-schedule'", 'constant|linear', 'got "cosine"'] },
    { name: '--prior-mixture with sigma 0', args: ['train', '--prior-mixture', '0.5,1,0'], code: 'INVALID_ARGUMENT', exit: 2, names: ["'--prior-mixture'", 'both sigmas > 0', 'got "0.5,1,0"'] },
    { name: 'eval without --checkpoint', args: ['eval'], code: 'INVALID_ARGUMENT', exit: 2, names: ["'--checkpoint'", 'a .safetensors file', 'got none'] },
    { name: 'eval --checkpoint of a missing file', args: ['eval', '--checkpoint', '<missing>'], code: 'DATA_NOT_FOUND', exit: 2, names: ["'--checkpoint'", 'a bayesgpu or PyTorch-BayesianCNN checkpoint', 'does not exist'] },
    { name: 'eval --checkpoint of an unparsable file', args: ['eval', '--checkpoint', '<garbage>'], code: 'BAD_FILE', exit: 2, names: ["'--checkpoint'", 'a bayesgpu or PyTorch-BayesianCNN checkpoint', 'header length'] },
    { name: 'eval --checkpoint of a truncated file', args: ['eval', '--checkpoint', '<truncated>'], code: 'BAD_FILE', exit: 2, names: ["'--checkpoint'", 'a bayesgpu or PyTorch-BayesianCNN checkpoint', 'beyond the file'] },
    { name: 'train --resume without optimizer state', args: ['train', '--epochs', '2', '--resume', '<noAdam>'], code: 'INVALID_ARGUMENT', exit: 2, names: ["'--resume'", 'a checkpoint written by bayesgpu train', 'carries no optimizer state'] },
    { name: 'train --data-dir without the files', args: ['train', '--data-dir', '<scratch>'], code: 'DATA_NOT_FOUND', exit: 2, names: ["'--data-dir'", 'train-images-idx3-ubyte[.gz]', 'got "'] },
  ];

  for (const row of cliRows) {
    it(`CLI: ${row.name}`, async () => {
      const sub: Record<string, string> = { '<missing>': paths.missing, '<garbage>': paths.garbage, '<truncated>': paths.truncated, '<noAdam>': paths.noAdam, '<scratch>': scratch };
      const args = row.args.map((a) => sub[a] ?? a);
      let failure: unknown = null;
      const run = await cli(args, { onFailure: (e) => (failure = e) });
      expect(run.code, run.err).toBe(row.exit);
      const lines = run.err.split('\n').filter((l) => l !== '');
      expect(lines, run.err).toHaveLength(1);
      expect(run.err).not.toMatch(/\n\s+at /);
      for (const part of row.names) expect(lines[0]).toContain(part);
      if (row.code) {
        expect(failure).toBeInstanceOf(BayesError);
        expect((failure as BayesError).code).toBe(row.code);
      }
    });
  }

  it('CLI: exit codes by kind of failure (2 bad input, 1 failure while running), one line, no stack trace', () => {
    const cases: [unknown, number, string][] = [
      [new BayesError('INVALID_ARGUMENT', "x: argument 'a' expected 1, got 2"), 2, "bayesgpu train: x: argument 'a' expected 1, got 2"],
      [new BayesError('CHECKPOINT_MISMATCH', 'loadCheckpoint: tensor'), 2, 'bayesgpu train: loadCheckpoint: tensor'],
      [new BayesError('GPU_ERROR', 'device lost\nwhile mapping'), 1, 'bayesgpu train: device lost while mapping'],
      [new BayesError('NO_WEBGPU', 'no adapter'), 1, 'bayesgpu train: no adapter'],
      [Object.assign(new Error("ENOENT: no such file or directory, open '/x/report.html'"), { code: 'ENOENT' }), 2, "bayesgpu train: ENOENT: no such file or directory, open '/x/report.html'"],
      [new TypeError('undefined is not a function'), 1, 'bayesgpu train: unexpected error: undefined is not a function (BAYESGPU_DEBUG=1 prints the stack trace)'],
    ];
    for (const [error, code, line] of cases) expect(describeFailure('train', error)).toEqual({ line, code });
  });
});
