/**
 * What fit reports besides the loss, for training that does not converge: the posterior's sigma per
 * Bayesian layer (read on the GPU, one small readback) and the warnings of a run that is held at the
 * prior or stays at chance.
 *
 * The loss fit minimises is the seed's (train/elbo.ts): loss = N * mean NLL + beta * KL, the negative
 * ELBO of the whole training set for beta = 1 (Blundell et al. 2015, eq. 1-2). EpochSummary gives its
 * two terms apart (nllTerm, klTerm) because their ratio is what decides whether the data or the prior
 * drives the gradients; klPerWeight = KL / (weights with a posterior) compares models of any size
 * (for the Gaussian prior, log(sigma_p / sigma_q) + (sigma_q^2 + mu^2) / (2 sigma_p^2) - 1/2 per weight,
 * Kingma & Welling 2014, appendix B).
 */
import type { Tensor } from '../gpu/tensor.js';
import { activationForward } from '../ops/activation.js';
import { scale } from '../ops/elementwise.js';
import { maxInto, sumInto } from '../ops/reduce.js';
import type { Sequential } from '../nn/sequential.js';

/** sigma = softplus(rho) over one group of a layer's variational tensors. */
export interface SigmaStats {
  mean: number;
  min: number;
  max: number;
  /** How many values (weights) the figures are over. */
  count: number;
}

/**
 * sigma of one Bayesian layer, its weights and its bias apart: the bias sigma has its own scale (few
 * values, no fan-in), and pooled with the weights it would hide in their mean.
 */
export interface LayerSigma {
  /** The layer's state-dict name: 'conv1', 'block1.body.conv1'. */
  layer: string;
  /** Over W_rho (and any other variational tensor of the layer but the bias); null if it has none. */
  weight: SigmaStats | null;
  /** Over bias_rho; null for a layer without a Bayesian bias. */
  bias: SigmaStats | null;
}

/** The variational tensors of a model (parameters of role 'rho') by name, grouped by layer in state-dict order. */
function rhoGroups(model: Sequential): { layer: string; weight: string[]; bias: string[] }[] {
  const groups = new Map<string, { layer: string; weight: string[]; bias: string[] }>();
  for (const [name, p] of model.namedParameters()) {
    if (p.role !== 'rho') continue;
    const dot = name.lastIndexOf('.');
    const layer = dot < 0 ? '' : name.slice(0, dot);
    let g = groups.get(layer);
    if (!g) groups.set(layer, (g = { layer, weight: [], bias: [] }));
    (name.slice(dot + 1).startsWith('bias') ? g.bias : g.weight).push(name);
  }
  return [...groups.values()];
}

/** Weights with a posterior (each a (mu, rho) pair): the count klPerWeight divides by. */
export function variationalWeightCount(model: Sequential): number {
  let n = 0;
  for (const p of model.namedParameters().values()) if (p.role === 'rho') n += p.value.size;
  return n;
}

/**
 * How to gather the sigma statistics of a model's variational tensors into a figures tensor, so
 * that they come back with a read that happens anyway (fit: the epoch's figures). Internal.
 */
export interface SigmaProbe {
  /** Slots it writes: 3 per variational tensor. */
  size: number;
  /**
   * Records, for variational tensor t, out[offset + 3t] = sum softplus(rho), out[offset + 3t + 1] =
   * -min, out[offset + 3t + 2] = max (reduce.wgsl's sum_axes and max_axes; the softplus is
   * activation.wgsl's, common.wgsl's one that the layers' sampling uses). Nothing is read.
   */
  record(out: Tensor, offset: number): void;
  /** The figures from the values read back. */
  decode(v: ArrayLike<number>, offset: number): LayerSigma[];
}

/** The probe of `model`'s variational tensors (looked up by name at each record), or null without one. */
export function sigmaProbe(model: Sequential): SigmaProbe | null {
  const groups = rhoGroups(model);
  const names = groups.flatMap((g) => [...g.weight, ...g.bias]);
  if (names.length === 0) return null;
  const sizes = new Map(names.map((n) => [n, model.namedParameters().get(n)!.value.size]));
  return {
    size: 3 * names.length,
    record: (out, offset) => {
      const params = model.namedParameters();
      model.ctx.scope(() => {
        names.forEach((name, t) => {
          const sigma = activationForward(params.get(name)!.value, { kind: 'softplus' });
          sumInto(sigma, out, { index: offset + 3 * t });
          maxInto(scale(sigma, -1), out, { index: offset + 3 * t + 1 });
          maxInto(sigma, out, { index: offset + 3 * t + 2 });
        });
      });
    },
    decode: (v, offset) => {
      let t = 0;
      // Several tensors of a group pool in float64: the mean over all their values, the least min, the largest max.
      const pool = (list: string[]): SigmaStats | null => {
        if (list.length === 0) return null;
        let total = 0, count = 0, min = Infinity, max = -Infinity;
        for (const name of list) {
          const at = offset + 3 * t++;
          total += v[at];
          min = Math.min(min, -v[at + 1]);
          max = Math.max(max, v[at + 2]);
          count += sizes.get(name)!;
        }
        return { mean: total / count, min, max, count };
      };
      return groups.map((g) => ({ layer: g.layer, weight: pool(g.weight), bias: pool(g.bias) }));
    },
  };
}

/** sigma = softplus(rho) statistics of every Bayesian layer of `model`, by layer (one readback; [] without one). */
export async function sigmaStatistics(model: Sequential): Promise<LayerSigma[]> {
  const probe = sigmaProbe(model);
  if (!probe) return [];
  const ctx = model.ctx;
  const stats = ctx.keep(ctx.empty([probe.size]));
  try {
    probe.record(stats, 0);
    return probe.decode(await stats.read(), 0);
  } finally {
    stats.dispose();
  }
}

export type FitWarningCode = 'kl-dominates' | 'chance-accuracy';

/** A warning of fit (FitOptions.onWarning, FitResult.warnings). */
export interface FitWarning {
  code: FitWarningCode;
  /** One line: what was seen, the likely causes and the options that change them. */
  message: string;
  /** The epoch (from 1, as EpochSummary.epoch) at whose end it was seen. */
  epoch: number;
  /** Training steps done then (the optimizer's update count). */
  step: number;
}

/** 'kl-dominates' fires when the epoch's beta * KL term exceeds this many times its NLL term (N * mean NLL). */
export const KL_DOMINANCE_RATIO = 1;
/** ...and (classification) the mean NLL is still above this fraction of ln(classes), a uniform guess's. */
export const KL_DOMINANCE_NLL_FRACTION = 0.5;
/** 'chance-accuracy' fires when the training accuracy is at most the chance level plus this many standard errors. */
export const CHANCE_STANDARD_ERRORS = 3;
/** The default of FitOptions.chanceWarningSteps. */
export const DEFAULT_CHANCE_WARNING_STEPS = 200;

/** What the warnings look at, from an epoch's summary. */
export interface EpochFigures {
  epoch: number;
  trainNll: number;
  trainAccuracy: number;
  nllTerm: number;
  klTerm: number;
}

/**
 * Watches fit's epochs for the two signs of a run that does not converge, each warned of at most
 * once per fit call (the first epoch it is seen at):
 * - 'kl-dominates': beta * KL > KL_DOMINANCE_RATIO * N * mean NLL, while the model has not fit the
 *   data (classification: mean NLL > KL_DOMINANCE_NLL_FRACTION * ln C; regression: N * NLL > 0). A
 *   model that fits well may carry a KL term above its small NLL term (the seed's LeNet on MNIST with
 *   beta 0.1 after a few epochs): that equilibrium is not flagged.
 * - 'chance-accuracy' (classification): once `chanceSteps` training steps are done, the epoch's
 *   training accuracy over its n examples is at most p + CHANCE_STANDARD_ERRORS * sqrt(p (1 - p) / n),
 *   p the chance level: the larger of 1/C and the most frequent class's share of the training split
 *   (what a constant guess scores).
 */
export class WarningWatch {
  private readonly raised = new Set<FitWarningCode>();

  /** `raised`: codes already warned of (a run resumed from a CPU copy), not warned of again. */
  constructor(private readonly o: { regression: boolean; classes: number; majorityShare: number; chanceSteps: number; trainSize: number; raised?: readonly FitWarningCode[] }) {
    for (const code of o.raised ?? []) this.raised.add(code);
  }

  /** The chance level p of the 'chance-accuracy' test. */
  get chance(): number {
    return Math.max(1 / this.o.classes, this.o.majorityShare);
  }

  /** The warnings of an epoch's end, `step` steps done, the accuracy over `examples` training examples. */
  check(e: EpochFigures, step: number, examples: number): FitWarning[] {
    const out: FitWarning[] = [];
    const raise = (code: FitWarningCode, message: string) => {
      if (this.raised.has(code)) return;
      this.raised.add(code);
      out.push({ code, message, epoch: e.epoch, step });
    };
    const { regression, classes } = this.o;
    const unfit = regression ? e.nllTerm > 0 : e.trainNll > KL_DOMINANCE_NLL_FRACTION * Math.log(classes);
    if (e.klTerm > KL_DOMINANCE_RATIO * e.nllTerm && unfit) {
      raise('kl-dominates',
        `epoch ${e.epoch} (step ${step}): the beta*KL term (${fmt(e.klTerm)}) exceeds the NLL term (N x mean NLL = ${fmt(e.nllTerm)}) while the mean NLL (${fmt(e.trainNll)}) is still ${regression ? 'positive' : `above half of ln(${classes}), ${fmt(KL_DOMINANCE_NLL_FRACTION * Math.log(classes))}`}: the prior, not the data, drives the weights. ` +
        `Likely causes: beta too large for ${this.o.trainSize} training examples (fit: beta, CLI: --beta; the NLL term grows with the examples and the KL term does not, so fewer examples need a smaller beta, or try the 'blundell' or 'standard' schedule), ` +
        'a posterior initialised far from the prior or too wide (priors.posterior_rho_initial, --posterior-rho-init; the seed uses -5,0.1), ' +
        'a prior much narrower than the weights need (priors.prior_sigma, --prior-sigma), or a learning rate too low for the data term to catch up (lr, --lr).');
    }
    if (!regression && step >= this.o.chanceSteps && examples > 0) {
      const p = this.chance;
      const bound = p + CHANCE_STANDARD_ERRORS * Math.sqrt((p * (1 - p)) / examples);
      if (e.trainAccuracy <= bound) {
        raise('chance-accuracy',
          `epoch ${e.epoch} (step ${step}): the training accuracy (${e.trainAccuracy.toFixed(4)} over ${examples} examples) is within ${CHANCE_STANDARD_ERRORS} standard errors of chance (${p.toFixed(4)}): the network is not learning. ` +
          'Likely causes: a learning rate too high or too low (lr, --lr), posterior noise too wide for the signal (priors.posterior_rho_initial, --posterior-rho-init, e.g. -5,0.1), ' +
          'beta so large the KL holds the weights at the prior (beta, --beta), a softplus activation that trains slowly in a deep network (activation, --activation relu), or labels that do not match the inputs.');
      }
    }
    return out;
  }
}

function fmt(v: number): string {
  return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : v.toFixed(4);
}
