/**
 * The kernel cases of `npm run bench`: the conv and fully connected layers of the seed's
 * models (src/nn/models.ts) for 32x32 inputs, read off the models themselves so that they
 * follow any change there. LeNet takes MNIST's 1 channel (as `npm start` trains it),
 * AlexNet and 3Conv3FC CIFAR-10's 3 channels; all have 10 classes.
 *
 * FLOPs count a multiply-add as 2 and are those of the mathematical operation (taps that
 * land in padding included), the same for every implementation:
 *   conv2d (forward, backward to input, backward to weight): 2 N Cout OH OW Cin KH KW each
 *   matmul C[M, N] = A[M, K] B[N, K]^T (a fully connected layer's forward): 2 M N K
 */
import type { Context } from '../../src/node.js';
import { Conv2d, Linear } from '../../src/nn/layers.js';
import { type ModelName, MODEL_NAMES, buildModel, resolveConfig } from '../../src/nn/models.js';

export const OPS = ['conv2d.forward', 'conv2d.backwardInput', 'conv2d.backwardWeight', 'matmul'] as const;
export type Op = (typeof OPS)[number];

export interface ConvLayer {
  kind: 'conv';
  model: ModelName;
  layer: string;
  cin: number;
  height: number;
  width: number;
  cout: number;
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  outH: number;
  outW: number;
}

export interface DenseLayer {
  kind: 'dense';
  model: ModelName;
  layer: string;
  inFeatures: number;
  outFeatures: number;
}

export type LayerShape = ConvLayer | DenseLayer;

export const MODEL_CHANNELS: Readonly<Record<ModelName, number>> = { lenet: 1, alexnet: 3, '3conv3fc': 3, resnet20: 3 };

const pairOf = (v: number | [number, number] | undefined, fallback: number): [number, number] => (v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : v);

/** Builds the frequentist model on `ctx` and walks its layers, tracking the per-example shape. */
export function modelLayers(ctx: Context, model: ModelName): LayerShape[] {
  const net = buildModel(ctx, resolveConfig('bench', model, false, { inChannels: MODEL_CHANNELS[model], classes: 10, imageSize: 32 }));
  const out: LayerShape[] = [];
  let shape: readonly number[] = net.inputShape;
  try {
    for (const [name, layer] of net.layers) {
      const next = layer.outputShape(shape);
      if (layer instanceof Conv2d) {
        out.push({
          kind: 'conv', model, layer: name, cin: shape[0], height: shape[1], width: shape[2], cout: layer.outChannels,
          kernel: layer.kernel, stride: pairOf(layer.options.stride, 1), padding: pairOf(layer.options.padding, 0), outH: next[1], outW: next[2],
        });
        if (layer.options.dilation !== undefined && pairOf(layer.options.dilation, 1).some((d) => d !== 1)) throw new Error(`bench: ${model}.${name} is dilated; the peers' cases assume dilation 1`);
      } else if (layer instanceof Linear) {
        out.push({ kind: 'dense', model, layer: name, inFeatures: shape[0], outFeatures: layer.outFeatures });
      }
      shape = next;
    }
  } finally {
    net.dispose();
  }
  return out;
}

export function allModels(): readonly ModelName[] {
  return MODEL_NAMES;
}

export interface Case {
  op: Op;
  layer: LayerShape;
  batch: number;
}

/** FLOPs of one run of `op` on `layer` at `batch` (2 per multiply-add). */
export function caseFlops(c: Case): number {
  const l = c.layer;
  if (l.kind === 'dense') return 2 * c.batch * l.inFeatures * l.outFeatures;
  return 2 * c.batch * l.cout * l.outH * l.outW * l.cin * l.kernel[0] * l.kernel[1];
}

/** A readable shape: 'lenet.conv2 6x14x14 -> 16x10x10 k5' or 'lenet.fc1 [N,256] x [120,256]^T'. */
export function shapeLabel(l: LayerShape): string {
  if (l.kind === 'dense') return `${l.model}.${l.layer} [N,${l.inFeatures}] x [${l.outFeatures},${l.inFeatures}]^T`;
  const k = l.kernel[0] === l.kernel[1] ? `${l.kernel[0]}` : `${l.kernel[0]}x${l.kernel[1]}`;
  const s = l.stride[0] !== 1 || l.stride[1] !== 1 ? ` s${l.stride[0] === l.stride[1] ? l.stride[0] : l.stride.join('x')}` : '';
  const p = l.padding[0] !== 0 || l.padding[1] !== 0 ? ` p${l.padding[0] === l.padding[1] ? l.padding[0] : l.padding.join('x')}` : '';
  return `${l.model}.${l.layer} ${l.cin}x${l.height}x${l.width} -> ${l.cout}x${l.outH}x${l.outW} k${k}${s}${p}`;
}

/** Every (op, layer, batch) the selection asks for: conv ops on conv layers, matmul on dense layers. */
export function selectCases(layers: readonly LayerShape[], ops: readonly Op[], batches: readonly number[], layerFilter?: readonly string[]): Case[] {
  const cases: Case[] = [];
  for (const layer of layers) {
    if (layerFilter && !layerFilter.some((f) => `${layer.model}.${layer.layer}`.includes(f))) continue;
    for (const batch of batches) {
      for (const op of ops) {
        if ((op === 'matmul') === (layer.kind === 'dense')) cases.push({ op, layer, batch });
      }
    }
  }
  return cases;
}
