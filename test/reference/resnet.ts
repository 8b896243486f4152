/**
 * float64 reference of a network described by its layer configs (getConfig(): Sequential, Residual,
 * Conv2d / BBBConv2d, Linear / BBBLinear, BatchNorm2d in training mode, ReLU, Softplus,
 * ZeroPadShortcut, GlobalAvgPool2d), built from the per-kernel references, and the ELBO loss of a
 * classifier made of them: T Monte Carlo samples tiled along the batch, combined by log-mean-exp,
 * NLL * trainSize + beta * KL (Blundell et al. 2015, eq. 2, the minibatch form of its sec. 3.4).
 * This reads the architecture only; the parameters and the noise are given by state-dict name, so
 * the loss is a deterministic function of the parameters and central differences apply.
 */
import { conv2dRef, lrtConv2dRef } from './conv2d.js';
import { linearRef, lrtForwardRef } from './linear.js';
import { batchNormTrainRef } from './batchnorm.js';
import { reluRef, softplusRef } from './activation.js';
import { globalAvgPool2dRef } from './pool.js';
import { zeroPadShortcutOutputShape, zeroPadShortcutRef } from './shortcut.js';
import { logMeanExpRef, logSoftmaxRef, nllRef } from './loss.js';
import { klGaussianRef } from './kl.js';
import { sampleWeightsRef, sigmaSquaredRef } from './sample.js';

type Config = { type: string; [k: string]: unknown };

export interface NetworkRef {
  /** Parameters by state-dict name ('layer1.block1.body.conv1.W_mu'). */
  params: Record<string, Float64Array>;
  /**
   * The standard normal noise of a Bayesian layer, by its state-dict prefix ('layer1.block1.body.conv1'):
   * LRT 'out', one per output [rows * outputs]; BBB 'w' [T * weights] and 'b' [T * outC].
   */
  noise: (layer: string, what: 'out' | 'w' | 'b', count: number) => ArrayLike<number>;
  /** Monte Carlo samples in the batch (rows = T * B). */
  samples: number;
  /** False: Bayesian layers use their means (no noise). */
  sample: boolean;
}

const pairOf = (v: unknown, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : (v as [number, number]));
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function tileArr(a: ArrayLike<number>, times: number): Float64Array {
  const out = new Float64Array(a.length * times);
  for (let t = 0; t < times; t++) for (let i = 0; i < a.length; i++) out[t * a.length + i] = a[i];
  return out;
}

/** y and its shape [rows, ...] for input x of shape [rows, ...] through the layer `c` at `prefix`. */
export function networkForwardRef(c: Config, prefix: string, x: Float64Array, shape: number[], r: NetworkRef): { y: Float64Array; shape: number[] } {
  const p = (name: string) => {
    const v = r.params[prefix + name];
    if (!v) throw new Error(`reference: no parameter '${prefix + name}'`);
    return v;
  };
  const rows = shape[0];
  const T = r.samples;
  switch (c.type) {
    case 'Sequential': {
      let h = { y: x, shape };
      for (const [name, child] of c.layers as [string, Config][]) h = networkForwardRef(child, `${prefix}${name}.`, h.y, h.shape, r);
      return h;
    }
    case 'Residual': {
      const body = networkForwardRef(c.body as Config, `${prefix}body.`, x, shape, r);
      const sc = c.shortcut ? networkForwardRef(c.shortcut as Config, `${prefix}shortcut.`, x, shape, r) : { y: x, shape };
      if (body.shape.join() !== sc.shape.join()) throw new Error(`reference: residual shapes ${body.shape} and ${sc.shape}`);
      return { y: body.y.map((v, i) => v + sc.y[i]), shape: body.shape };
    }
    case 'Conv2d':
    case 'BBBConv2d': {
      const k = pairOf(c.kernel, 1);
      const s = { x: shape, w: [c.outChannels as number, c.inChannels as number, ...k], stride: pairOf(c.stride, 1), padding: pairOf(c.padding, 0), dilation: pairOf(c.dilation, 1) };
      const hasBias = c.bias !== false;
      const oh = Math.floor((shape[2] + 2 * s.padding[0] - s.dilation[0] * (k[0] - 1) - 1) / s.stride[0]) + 1;
      const ow = Math.floor((shape[3] + 2 * s.padding[1] - s.dilation[1] * (k[1] - 1) - 1) / s.stride[1]) + 1;
      const out = [rows, c.outChannels as number, oh, ow];
      if (c.type === 'Conv2d') return { y: conv2dRef(s, x, p('weight'), hasBias ? p('bias') : null), shape: out };
      if (!r.sample) return { y: conv2dRef(s, x, p('W_mu'), hasBias ? p('bias_mu') : null), shape: out };
      const layer = prefix.slice(0, -1);
      if (c.layerType === 'bbb') {
        const w = sampleWeightsRef(tileArr(p('W_mu'), T), tileArr(p('W_rho'), T), r.noise(layer, 'w', T * size(s.w)));
        const b = hasBias ? sampleWeightsRef(tileArr(p('bias_mu'), T), tileArr(p('bias_rho'), T), r.noise(layer, 'b', T * out[1])) : null;
        return { y: conv2dRef({ ...s, w: [T, ...s.w] }, x, w, b), shape: out };
      }
      const y = lrtConv2dRef(s, x, p('W_mu'), sigmaSquaredRef(p('W_rho')), hasBias ? p('bias_mu') : null, hasBias ? sigmaSquaredRef(p('bias_rho')) : null, r.noise(layer, 'out', size(out))).y;
      return { y, shape: out };
    }
    case 'Linear':
    case 'BBBLinear': {
      const inF = shape[1];
      const outF = c.outFeatures as number;
      const hasBias = c.bias !== false;
      const out = [rows, outF];
      if (c.type === 'Linear') return { y: linearRef(x, p('weight'), hasBias ? p('bias') : null, { rows, inF, outF, samples: 1 }), shape: out };
      if (!r.sample) return { y: linearRef(x, p('W_mu'), hasBias ? p('bias_mu') : null, { rows, inF, outF, samples: 1 }), shape: out };
      const layer = prefix.slice(0, -1);
      if (c.layerType === 'bbb') {
        const w = sampleWeightsRef(tileArr(p('W_mu'), T), tileArr(p('W_rho'), T), r.noise(layer, 'w', T * outF * inF));
        const b = hasBias ? sampleWeightsRef(tileArr(p('bias_mu'), T), tileArr(p('bias_rho'), T), r.noise(layer, 'b', T * outF)) : null;
        return { y: linearRef(x, w, b, { rows, inF, outF, samples: T }), shape: out };
      }
      const y = lrtForwardRef(x, p('W_mu'), sigmaSquaredRef(p('W_rho')), hasBias ? p('bias_mu') : null, hasBias ? sigmaSquaredRef(p('bias_rho')) : null, r.noise(layer, 'out', size(out)), rows, inF, outF);
      return { y, shape: out };
    }
    case 'BatchNorm2d':
      return { y: batchNormTrainRef(x, p('weight'), p('bias'), { N: rows, C: shape[1], HW: shape[2] * shape[3] }, (c.eps as number | undefined) ?? 1e-5), shape };
    case 'ReLU':
      return { y: reluRef(x), shape };
    case 'Softplus':
      return { y: softplusRef(x), shape };
    case 'ZeroPadShortcut': {
      const s = { x: shape, outChannels: c.outChannels as number, stride: (c.stride as number | undefined) ?? 1 };
      return { y: zeroPadShortcutRef(s, x), shape: zeroPadShortcutOutputShape(s) };
    }
    case 'GlobalAvgPool2d':
      return { y: globalAvgPool2dRef(x, shape), shape: [rows, shape[1]] };
    case 'Flatten':
      return { y: x, shape: [rows, size(shape.slice(1))] };
    default:
      throw new Error(`reference: layer type '${c.type}' is not covered`);
  }
}

/**
 * The ELBO loss of a classifier network (config at the top, a Sequential) on x [B, ...inputShape]:
 * x tiled T times, logits -> log-softmax -> log-mean-exp over T -> NLL * trainSize, plus beta * KL of
 * every (mu, rho) pair against the Gaussian prior (closed form).
 */
export function networkLossRef(
  config: Config, inputShape: readonly number[], r: NetworkRef, x: ArrayLike<number>, labels: ArrayLike<number>,
  o: { beta: number; trainSize: number; prior: { mu: number; sigma: number } },
): number {
  const B = labels.length;
  const xt = tileArr(x, r.samples);
  const { y: logits, shape } = networkForwardRef(config, '', xt, [r.samples * B, ...inputShape], r);
  const classes = shape[1];
  const logp = logSoftmaxRef(logits, r.samples * B, classes);
  const combined = r.samples > 1 ? logMeanExpRef(logp, r.samples) : logp;
  let kl = 0;
  for (const [name, mu] of Object.entries(r.params)) {
    if (!name.endsWith('_mu')) continue;
    kl += klGaussianRef(mu, r.params[name.replace(/_mu$/, '_rho')], o.prior);
  }
  return nllRef(combined, labels, classes) * o.trainSize + o.beta * kl;
}
