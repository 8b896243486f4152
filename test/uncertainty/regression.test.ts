import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/gpu/context.js';
import type { Regressor, Sequential } from '../../src/nn/sequential.js';
import { type RegressionHead, bayesianRegressor } from '../../src/uncertainty/regression.js';
import { regressionLossAndGradients } from '../../src/train/regression.js';
import { fit } from '../../src/train/fit.js';
import { trainStep } from '../../src/train/step.js';
import { Adam } from '../../src/train/adam.js';
import { SINE_SETTINGS, noisySine, trainSine } from '../../examples/regression.js';
import { context, expectClose, numericGradient, randomArray } from '../helpers.js';
import { drawNormal } from '../../src/ops/sample.js';
import { type MlpDrawsRef, type MlpLayerRef, bayesMlpForwardRef, predictiveMomentsRef, regressionLossRef } from '../reference/regression.js';

/** Gaussian prior and posterior initialisation of the small models: sigmas ~0.3, so the rho gradients matter. */
const PRIORS = { prior_mu: 0.1, prior_sigma: 0.5, posterior_mu_initial: [0, 0.5] as [number, number], posterior_rho_initial: [-1, 0.3] as [number, number] };
const FEATURES = 2;

function tinyModel(ctx: Context, head: RegressionHead, layerType: 'bbb' | 'lrt'): Regressor {
  return bayesianRegressor(ctx, { features: FEATURES, hidden: [3], activation: 'softplus', head, layerType, priors: PRIORS, noiseStd: 0.7, seed: 3 });
}

/** The model's parameters in float64, by state-dict name. */
async function parameterValues(model: Sequential): Promise<Map<string, Float64Array>> {
  const out = new Map<string, Float64Array>();
  for (const [name, p] of model.namedParameters()) out.set(name, Float64Array.from(await p.value.read()));
  return out;
}

/** The reference layers of tinyModel (fc1 at position 0, act1 at 1, out at 2: stream bases 0, 8, 16). */
function referenceLayers(v: Map<string, Float64Array>, head: RegressionHead): MlpLayerRef[] {
  const linear = (name: string, inF: number, outF: number, streamBase: number): MlpLayerRef => ({
    kind: 'linear', wMu: v.get(`${name}.W_mu`)!, wRho: v.get(`${name}.W_rho`)!, bMu: v.get(`${name}.bias_mu`)!, bRho: v.get(`${name}.bias_rho`)!, inF, outF, streamBase,
  });
  return [linear('fc1', FEATURES, 3, 0), { kind: 'softplus' }, linear('out', 3, head === 'heteroscedastic' ? 2 : 1, 16)];
}

/**
 * The GPU's own normal draws of the layer streams of tinyModel (fc1: 0-2, out: 16-18) under key (seed, step):
 * the references use them, since float64 Box-Muller differs from WGSL's (cos accurate to 2^-11) by up to ~3e-3.
 */
async function gpuDraws(ctx: Context, seed: number, step: number, samples: number, layerType: 'bbb' | 'lrt'): Promise<MlpDrawsRef> {
  const table = new Map<number, Float32Array>();
  for (const stream of [0, 1, 2, 16, 17, 18]) {
    const t = drawNormal(ctx, [256], { key: { seed, step, stream } });
    table.set(stream, Float32Array.from(await t.read()));
    t.dispose();
  }
  return {
    samples, layerType,
    eps: (stream, count) => {
      const draws = table.get(stream);
      if (!draws || count > draws.length) throw new Error(`gpuDraws: no ${count} draws of stream ${stream}`);
      return draws.subarray(0, count);
    },
  };
}

function tileRows(x: ArrayLike<number>, times: number): Float64Array {
  return Float64Array.from({ length: x.length * times }, (_, i) => x[i % x.length]);
}

describe('regression ELBO gradients', () => {
  for (const layerType of ['bbb', 'lrt'] as const) {
    for (const head of ['heteroscedastic', 'homoscedastic'] as const) {
      it(`equal central finite differences of the float64 loss (${layerType}, ${head} head, T = 2)`, async () => {
        const ctx = await context();
        const model = tinyModel(ctx, head, layerType);
        const B = 3;
        const T = 2;
        const xs = randomArray(B * FEATURES, 21, -2, 2);
        const ys = randomArray(B, 22, -1, 1);
        const step = { samples: T, beta: 0.7, trainSize: 10, seed: 5, step: 3 };
        const r = regressionLossAndGradients(model, ctx.tensor(xs, [B, FEATURES]), ctx.tensor(ys, [B]), step);

        const values = await parameterValues(model);
        const names = [...values.keys()];
        const flat = Float64Array.from(names.flatMap((n) => Array.from(values.get(n)!)));
        const unflatten = (f: Float64Array) => {
          const m = new Map<string, Float64Array>();
          let at = 0;
          for (const n of names) {
            const size = values.get(n)!.length;
            m.set(n, f.slice(at, at + size));
            at += size;
          }
          return m;
        };
        const draws = await gpuDraws(ctx, step.seed, step.step, T, layerType);
        const lossOf = (f: Float64Array) => {
          const v = unflatten(f);
          const logVar = head === 'homoscedastic' ? v.get('noise.log_var')![0] : null;
          return regressionLossRef(referenceLayers(v, head), tileRows(xs, T), ys, draws, { trainSize: step.trainSize, beta: step.beta, prior: { mu: PRIORS.prior_mu, sigma: PRIORS.prior_sigma }, logVar });
        };

        const want = lossOf(flat);
        // Tolerance 1e-6: the f32 forward of a 2-3-2 network and its sums against float64, same draws (seen: 1.3e-7).
        expectClose(await r.loss.read(), [want.loss], 1e-6, 'loss');
        expectClose(await r.nll.read(), [want.nll], 1e-6, 'nll');
        expectClose(await r.kl.read(), [want.kl], 1e-6, 'kl');

        const fd = numericGradient((f) => lossOf(f).loss, flat, 1e-6);
        const grads: number[] = [];
        for (const [name, p] of model.namedParameters()) {
          expect(p.grad, `${name} has a gradient`).not.toBeNull();
          grads.push(...(await p.grad!.read()));
        }
        // Tolerance 1e-6 of the largest gradient: f32 backward (sums over 6 rows, KL terms) against float64
        // central differences, whose truncation error ~h^2 f''' is below 1e-10 at h = 1e-6 (seen: 1.6e-7).
        expectClose(grads, fd, 1e-6, `gradient (${names.join(', ')})`);
        model.dispose();
      });
    }
  }
});

describe('predict (a regressor)', () => {
  for (const layerType of ['bbb', 'lrt'] as const) {
    for (const head of ['heteroscedastic', 'homoscedastic'] as const) {
      it(`equals the float64 moments of the recovered Monte Carlo samples, batch by batch (${layerType}, ${head})`, async () => {
        const ctx = await context();
        const model = tinyModel(ctx, head, layerType);
        const values = await parameterValues(model);
        const layers = referenceLayers(values, head);
        const points = 5;
        const T = 4;
        const xs = randomArray(points * FEATURES, 31, -3, 3);
        // batchSize 2: batches start at points 0, 2, 4 and use the random keys (9, 2 + start).
        const got = await model.predict({ data: xs, shape: [points, FEATURES] }, { samples: T, seed: 9, step: 2, batchSize: 2 });
        for (let from = 0; from < points; from += 2) {
          const n = Math.min(2, points - from);
          const draws = await gpuDraws(ctx, 9, 2 + from, T, layerType);
          const out = bayesMlpForwardRef(layers, tileRows(xs.subarray(from * FEATURES, (from + n) * FEATURES), T), T * n, draws);
          const pred = head === 'heteroscedastic' ? out : Float64Array.from({ length: 2 * T * n }, (_, i) => (i % 2 === 0 ? out[i / 2] : values.get('noise.log_var')![0]));
          const want = predictiveMomentsRef(pred, T);
          const slice = (a: Float32Array) => a.subarray(from, from + n);
          // Tolerance 2e-6: f32 network and moments against float64 with the same draws (seen: 4e-7).
          expectClose(slice(got.mean), want.mean, 2e-6, 'mean');
          expectClose(slice(got.epistemicVar), want.epistemic, 2e-6, 'epistemic');
          expectClose(slice(got.aleatoricVar), want.aleatoric, 2e-6, 'aleatoric');
          expectClose(slice(got.std), want.std, 2e-6, 'std');
        }
        // std is the root of the two parts, per point.
        for (let i = 0; i < points; i++) expect(got.std[i]).toBeCloseTo(Math.sqrt(got.epistemicVar[i] + got.aleatoricVar[i]), 6);
        model.dispose();
      });
    }
  }

  it('without sampling (posterior means) every sample agrees: zero epistemic variance; frees its tensors', async () => {
    const ctx = await context();
    const model = tinyModel(ctx, 'heteroscedastic', 'lrt');
    const live = ctx.memory().liveTensors;
    const p = await model.predict({ data: randomArray(8, 3), shape: [4, FEATURES] }, { samples: 5, sample: false, batchSize: 3 });
    for (const v of p.epistemicVar) expect(v).toBeLessThan(1e-12);
    expect(ctx.memory().liveTensors).toBe(live); // nothing left behind
    expect(model.training).toBe(true); // the mode is restored
    model.dispose();
  });
});

describe('Bayesian regression on a noisy sine (acceptance)', () => {
  // Inside: a grid on [-2.5, 2.5], away from the edges of the training range [-3, 3].
  const inside = Float32Array.from({ length: 21 }, (_, i) => -2.5 + i * 0.25);
  const outside = Float32Array.from([-7, -6.5, -6, -5.5, -5, 5, 5.5, 6, 6.5, 7]);

  for (const head of ['homoscedastic', 'heteroscedastic'] as const) {
    it(`${head} head: fits sin(x) within 0.2 inside, and the predictive std at |x| >= 5 is at least twice the std inside`, async () => {
      const ctx = await context();
      const { model, result, seconds } = await trainSine(ctx, { head });
      console.log(`noisy sine, ${head} head: ${SINE_SETTINGS.count} points, ${result.steps} Adam steps in ${seconds.toFixed(1)} s; final NLL ${result.history.at(-1)!.trainNll.toFixed(3)}, KL ${result.history.at(-1)!.kl.toFixed(0)}`);
      expect(result.history).toHaveLength(SINE_SETTINGS.epochs);
      expect(result.history.at(-1)!.trainLoss).toBeLessThan(result.history[0].trainLoss);

      const pin = await model.predict({ data: inside, shape: [inside.length, 1] }, { samples: 200, seed: 9 });
      const pout = await model.predict({ data: outside, shape: [outside.length, 1] }, { samples: 200, seed: 9 });
      let worst = 0;
      inside.forEach((x, i) => (worst = Math.max(worst, Math.abs(pin.mean[i] - Math.sin(x)))));
      const maxInside = Math.max(...pin.std);
      const minOutside = Math.min(...pout.std);
      const maxEpistemicInside = Math.sqrt(Math.max(...pin.epistemicVar));
      const minEpistemicOutside = Math.sqrt(Math.min(...pout.epistemicVar));
      console.log(`  max |mean - sin(x)| on [-2.5, 2.5]: ${worst.toFixed(3)}; std: max inside ${maxInside.toFixed(3)}, min at |x| >= 5 ${minOutside.toFixed(3)}; epistemic std: max inside ${maxEpistemicInside.toFixed(3)}, min outside ${minEpistemicOutside.toFixed(3)}`);
      expect(worst).toBeLessThan(0.2);
      expect(minOutside).toBeGreaterThan(2 * maxInside);
      // The growth must come from the model's uncertainty, not only from an extrapolated noise level.
      expect(minEpistemicOutside).toBeGreaterThan(2 * maxEpistemicInside);
      // Inside the data the noise estimate is near the true 0.1: misfit inflates it a little (0.114 to 0.141
      // over training seeds 2-6 for both heads), so the band is [0.07, 0.18].
      const noiseInside = Math.sqrt(pin.aleatoricVar.reduce((a, v) => a + v, 0) / inside.length);
      expect(noiseInside).toBeGreaterThan(0.07);
      expect(noiseInside).toBeLessThan(0.18);
      model.dispose();
    });
  }
});

describe('fit (regression)', () => {
  it('frees every intermediate: afterwards only the gradients and the optimizer state (m and v) per parameter are alive', async () => {
    const ctx = await context();
    const model = bayesianRegressor(ctx, { hidden: [4], head: 'homoscedastic' });
    const live = ctx.memory().liveTensors;
    const epochs: number[] = [];
    const r = await fit(model, noisySine(10), { epochs: 2, batchSize: 4, samples: 3, validFraction: 0, onEpoch: (e) => void epochs.push(e.epoch) });
    expect(epochs).toEqual([1, 2]);
    expect(r.steps).toBe(6); // 3 batches (4, 4, 2) per epoch
    const parameters = model.namedParameters().size;
    expect(ctx.memory().liveTensors).toBe(live + 3 * parameters);
    r.optimizer!.dispose();
    expect(ctx.memory().liveTensors).toBe(live + parameters);
    model.dispose(); // parameters and their gradients
    expect(ctx.memory().liveTensors).toBe(live - parameters);
  });
});

describe('bad input', () => {
  it('fit and predict reject bad data and options before GPU work', async () => {
    const ctx = await context();
    const model = bayesianRegressor(ctx, { hidden: [4] });
    const data = noisySine(10);
    const live = ctx.memory().liveTensors;
    const options = { epochs: 1, batchSize: 4 };
    await expect(fit(model, { ...data, y: data.y.subarray(0, 9) }, options)).rejects.toThrow(/fit: argument 'data.y.length' expected 10 \(one target per example\), got 9/);
    await expect(fit(model, { ...data, x: data.x.subarray(0, 9) }, options)).rejects.toThrow(/argument 'data.x.length' expected 10 \(count 10 x features 1\), got 9/);
    await expect(fit(model, { ...data, count: 0 }, options)).rejects.toThrow(/argument 'data.count' expected an integer >= 1, got 0/);
    await expect(fit(model, data, { epochs: 1, batchSize: 0 })).rejects.toThrow(/fit: argument 'batchSize' expected an integer >= 1, got 0/);
    await expect(fit(model, data, { epochs: 0, batchSize: 4 })).rejects.toThrow(/argument 'epochs' expected an integer >= 1, got 0/);
    await expect(fit(model, data, { ...options, samples: 0 })).rejects.toThrow(/argument 'samples' expected an integer >= 1, got 0/);
    await expect(fit(model, data, { ...options, lr: -1 })).rejects.toThrow(/argument 'lr' expected a positive number, got -1/);
    await expect(fit(model, data, { ...options, beta: -1 })).rejects.toThrow(/argument 'beta' expected a number >= 0/);
    const nan = Float32Array.from(data.y);
    nan[3] = NaN;
    await expect(fit(model, { ...data, y: nan }, options)).rejects.toThrow(/argument 'data.y\[3\]' expected a finite number, got NaN/);
    await expect(fit(model, { ...data, x: new Float32Array(20), features: 2 }, options)).rejects.toThrow(/has 2 features per example but the model expects input \[1\]/);
    const points = { data: data.x, shape: [data.count, 1] };
    await expect(model.predict(points, { samples: 0 })).rejects.toThrow(/predict: argument 'samples' expected an integer >= 1, got 0/);
    await expect(model.predict({ data: new Float32Array(0), shape: [0, 1] })).rejects.toThrow(/predict: argument 'input.shape' expected an array of positive integers/);
    await expect(model.predict(points, { samples: 2, batchSize: 0 })).rejects.toThrow(/predict: argument 'batchSize' expected an integer >= 1, got 0/);
    expect(ctx.memory().liveTensors).toBe(live);

    const two = bayesianRegressor(ctx, { features: 2, hidden: [4] });
    await expect(two.predict({ data: new Float32Array(3), shape: [3] })).rejects.toThrow(/predict: argument 'input.shape' expected shape \[B, 2\] \(or \[2\] for one example\), got \[3\]/);
    const x = ctx.tensor(new Float32Array(6), [3, 2]);
    const adam = new Adam(two, { lr: 0.01 });
    expect(() => trainStep(two, adam, x, ctx.tensor([1, 2], [2]), { samples: 1, beta: 1, trainSize: 3, seed: 0 })).toThrow(/trainStep: argument 'y' expected shape \[3\] \(one target per row of x\), got \[2\]/);
    expect(() => trainStep(two, adam, x, ctx.tensor([1, 2, 3], [3]), { samples: 0, beta: 1, trainSize: 3, seed: 0 })).toThrow(/argument 'samples' expected an integer >= 1, got 0/);
    x.dispose();
    expect(() => trainStep(two, adam, x, ctx.tensor([1, 2, 3], [3]), { samples: 1, beta: 1, trainSize: 3, seed: 0 })).toThrow(/argument 'x' is a disposed tensor/);
    expect(adam.step).toBe(0);
  });

  it('a model must end in the (mean, log variance) head, and the builder checks its options', async () => {
    const ctx = await context();
    const { Sequential } = await import('../../src/nn/sequential.js');
    const { BBBLinear } = await import('../../src/nn/bayes.js');
    const plain = new Sequential(ctx, { fc: new BBBLinear(1, 3) }, { inputShape: [1] });
    const wrongHead = new Sequential(ctx, { fc: new BBBLinear(1, 3) }, { inputShape: [1], task: 'regression' });
    await expect(fit(wrongHead, noisySine(4), { epochs: 1, batchSize: 4 })).rejects.toThrow(/fit: argument 'model' expected outputs \[2\] per example .* got \[3\]/);
    await expect(fit(plain, noisySine(4), { epochs: 1, batchSize: 4 })).rejects.toThrow(/fit: argument 'data' expected labelled examples .*task is 'classification'/);
    await expect(wrongHead.predict({ data: [0.5], shape: [1] })).rejects.toThrow(/predict: a regression model must output \[2\] per example .* got \[3\]/);
    expect(() => bayesianRegressor(ctx, { hidden: [0] })).toThrow(/bayesianRegressor: argument 'hidden\[0\]' expected an integer >= 1, got 0/);
    expect(() => bayesianRegressor(ctx, { head: 'gaussian' as RegressionHead })).toThrow(/argument 'head' expected one of 'homoscedastic' \| 'heteroscedastic', got "gaussian"/);
    expect(() => bayesianRegressor(ctx, { head: 'homoscedastic', noiseStd: 0 })).toThrow(/HomoscedasticNoise: argument 'std' expected a positive number, got 0/);
  });
});
