import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/gpu/context.js';
import { BayesError } from '../../src/errors.js';
import { BBBLinear } from '../../src/nn/bayes.js';
import { Linear, ReLU } from '../../src/nn/layers.js';
import { Regressor, Sequential } from '../../src/nn/sequential.js';
import { type LaplaceData, cholesky, fitLaplace, lastLayerFeatures, symmetricEigen } from '../../src/uncertainty/laplace.js';
import { context, expectClose, randomArray, rng } from '../helpers.js';
import {
  denseFunctionSpace, denseGgn, denseLogMarginal, diagonalMatrix, finiteDifferenceHessian, kfacFactors, kron, linear, monteCarloSoftmax, nllSum, relu, softmax,
} from '../reference/laplace.js';

// The problem: a 4 -> 6 -> 3 MLP, N = 40 training examples, last layer 3 x (6 + 1) = 21 parameters.
const IN = 4;
const D = 6;
const C = 3;
const N = 40;
const P = C * (D + 1);

function makeData(count: number, seed: number): LaplaceData & { x: Float32Array } {
  const r = rng(seed + 1);
  return {
    x: Float32Array.from(randomArray(count * IN, seed, -3, 3)),
    labels: Uint32Array.from({ length: count }, () => Math.floor(r() * C)),
    count,
    shape: [IN],
  };
}

function mlp(ctx: Context, bayesian = false, seed = 3): Sequential {
  return bayesian
    ? new Sequential(ctx, { fc1: new BBBLinear(IN, D), act1: new ReLU(), fc2: new BBBLinear(D, C) }, { inputShape: [IN], seed })
    : new Sequential(ctx, { fc1: new Linear(IN, D), act1: new ReLU(), fc2: new Linear(D, C) }, { inputShape: [IN], seed });
}

/** The model's weights, read back, and the float64 reference of its features and last-layer theta = [W | b]. */
async function reference(model: Sequential, x: ArrayLike<number>, count: number, names = ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']) {
  const params = model.namedParameters();
  const [w1, b1, w2, b2] = (await model.ctx.readMany(names.map((n) => params.get(n)!.value))) as Float32Array[];
  const phi = relu(linear(x, count, IN, w1, b1, D));
  const theta = new Float64Array(P);
  for (let c = 0; c < C; c++) {
    for (let d = 0; d < D; d++) theta[c * (D + 1) + d] = w2[c * D + d];
    theta[c * (D + 1) + D] = b2[c];
  }
  return { phi, theta, w1, b1 };
}

const logGrid = (points: number) => Array.from({ length: points }, (_, i) => Math.log(1e-4) + (i * (Math.log(1e4) - Math.log(1e-4))) / (points - 1));

describe('float64 linear algebra of laplace.ts', () => {
  it('symmetricEigen reconstructs random symmetric matrices with orthonormal vectors', () => {
    for (const n of [1, 3, 12, 85]) {
      const r = randomArray(n * n, n);
      const A = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) A[i * n + j] = r[i * n + j] + r[j * n + i];
      const { values, vectors: V } = symmetricEigen(A, n);
      const back = new Float64Array(n * n);
      const gram = new Float64Array(n * n);
      const eye = new Float64Array(n * n);
      for (let i = 0; i < n; i++) {
        eye[i * n + i] = 1;
        for (let j = 0; j < n; j++) {
          for (let k = 0; k < n; k++) {
            back[i * n + j] += V[i * n + k] * values[k] * V[j * n + k];
            gram[i * n + j] += V[k * n + i] * V[k * n + j];
          }
        }
      }
      expectClose(back, A, 1e-12, `V diag V^T, n=${n}`);
      expectClose(gram, eye, 1e-12, `V^T V, n=${n}`);
    }
  });

  it('cholesky factors a positive definite matrix', () => {
    const n = 5;
    const r = randomArray(n * n, 9);
    const A = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) A[i * n + j] += r[i * n + k] * r[j * n + k];
    for (let i = 0; i < n; i++) A[i * n + i] += 0.1;
    const L = cholesky(A, n);
    const back = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) back[i * n + j] += L[i * n + k] * L[j * n + k];
    expectClose(back, A, 1e-13, 'L L^T');
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) expect(L[i * n + j]).toBe(0);
  });
});

describe('last-layer Laplace (Daxberger et al. 2021)', () => {
  it('the reference GGN equals the finite-difference Hessian of the NLL sum (softmax CE of a linear last layer)', async () => {
    const ctx = await context();
    const model = mlp(ctx);
    const data = makeData(N, 11);
    const { phi, theta } = await reference(model, data.x, N);
    const ggn = denseGgn(theta, phi, N, D, C);
    const fd = finiteDifferenceHessian(theta, phi, data.labels, N, D, C);
    // Second differences with h = 1e-4 of a sum of 40 O(1) terms: about 1e-7 of the scale.
    expectClose(ggn, fd, 1e-5, 'GGN vs finite-difference Hessian');
    model.dispose();
  });

  it('features on the GPU match the float64 features, and the mode is restored', async () => {
    const ctx = await context();
    const model = mlp(ctx);
    const data = makeData(N, 12);
    const { phi } = await reference(model, data.x, N);
    model.train();
    const got = await lastLayerFeatures(model, data, { batchSize: 7 });
    expect(model.training).toBe(true);
    expect(got.count).toBe(N);
    expect(got.features).toBe(D);
    expect(Array.from(got.labels!)).toEqual(Array.from(data.labels));
    expectClose(got.phi, phi, 1e-5, 'phi');
    model.dispose();
  });

  for (const curvature of ['diag', 'kron'] as const) {
    it(`${curvature}: curvature, marginal likelihood, the chosen prior precision and the probit predictive match the dense reference`, async () => {
      const ctx = await context();
      const model = mlp(ctx);
      const data = makeData(N, 13);
      const { phi, theta } = await reference(model, data.x, N);
      model.train();
      const la = await fitLaplace(model, data, { curvature, batchSize: 16 });
      expect(model.training).toBe(true);
      expect([la.curvature, la.count, la.features, la.classes]).toEqual([curvature, N, D, C]);
      expectClose(la.mapWeights, theta, 1e-7, 'theta*');

      // Curvature: the dense reference and its approximation as a dense P x P matrix.
      const ggn = denseGgn(theta, phi, N, D, C);
      let H: Float64Array;
      const h = la.hessian;
      if (curvature === 'diag') {
        expect(h.kind).toBe('diag');
        H = diagonalMatrix(ggn, P);
        expectClose((h as { diagonal: Float64Array }).diagonal, Array.from({ length: P }, (_, i) => ggn[i * P + i]), 1e-5, 'diag GGN');
      } else {
        expect(h.kind).toBe('kron');
        const { B, A } = kfacFactors(theta, phi, N, D, C);
        const k = h as { outputFactor: Float64Array; inputFactor: Float64Array };
        expectClose(k.outputFactor, B, 1e-5, 'KFAC B = sum Lambda_n');
        expectClose(k.inputFactor, A, 1e-5, 'KFAC A = mean phi~ phi~^T');
        H = kron(B, C, A, D + 1);
      }

      // The marginal likelihood at several prior precisions, with a Cholesky log det of the dense matrix.
      const nll = nllSum(theta, phi, data.labels, N, D, C);
      expect(la.logLikelihood).toBeCloseTo(-nll, 3);
      for (const delta of [1e-3, 0.1, 1, 10, 1e3]) {
        const want = denseLogMarginal(H, P, theta, nll, delta);
        expect(Math.abs(la.logMarginalLikelihoodAt(delta) - want), `log p(D | ${delta})`).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));
      }

      // The chosen delta against a brute-force grid of the reference over the same interval.
      const grid = logGrid(8001);
      const values = grid.map((l) => denseLogMarginal(H, P, theta, nll, Math.exp(l)));
      let best = 0;
      for (let i = 1; i < grid.length; i++) if (values[i] > values[best]) best = i;
      expect(best, 'maximum inside the interval').toBeGreaterThan(0);
      expect(best).toBeLessThan(grid.length - 1);
      const step = grid[1] - grid[0];
      expect(Math.abs(Math.log(la.priorPrecision) - grid[best])).toBeLessThanOrEqual(step);
      const atChosen = denseLogMarginal(H, P, theta, nll, la.priorPrecision);
      expect(atChosen).toBeGreaterThanOrEqual(values[best] - 1e-6 * Math.abs(values[best]));
      expect(Math.abs(la.logMarginalLikelihood - atChosen)).toBeLessThan(1e-5 * Math.abs(atChosen));

      // Predictive of new inputs: Sigma_f = J (H + delta I)^-1 J^T by a dense inverse, then the probit.
      const M = 7;
      const test = makeData(M, 14);
      const { phi: phiTest } = await reference(model, test.x, M);
      const ref = denseFunctionSpace(H, la.priorPrecision, theta, phiTest, M, D, C);
      const fs = la.functionSpace(phiTest, M);
      // 1e-6: the posterior's curvature comes from the GPU's f32 features (about 1e-7 from the float64 ones).
      expectClose(fs.mean, ref.f, 1e-6, 'f');
      expectClose(fs.covariance, ref.cov, 1e-6, 'Sigma_f');
      const p = await la.predict({ data: test.x, shape: [M, IN] }, { method: 'probit', batchSize: 3 });
      expect([p.count, p.classes, p.samples, p.labels]).toEqual([M, C, 1, null]);
      expectClose(p.mean, ref.probit.mean, 1e-5, 'probit mean');
      expectClose(p.epistemic, ref.probit.epistemic, 1e-4, 'probit epistemic');
      expectClose(p.aleatoric, ref.probit.aleatoric, 1e-5, 'probit aleatoric');
      expectClose(p.mutualInformation, ref.probit.mutualInformation, 1e-4, 'probit MI');
      expectClose(p.predictiveEntropy, ref.probit.predictiveEntropy, 1e-5, 'probit H[p]');
      expectClose(p.expectedEntropy, Array.from(ref.probit.predictiveEntropy, (v, n) => v - ref.probit.mutualInformation[n]), 1e-4, 'probit E H');
      for (let n = 0; n < M; n++) {
        const row = Array.from(ref.probit.mean.subarray(n * C, (n + 1) * C));
        expect(p.predicted[n]).toBe(row.indexOf(Math.max(...row)));
        expect(p.maxProb[n]).toBeCloseTo(Math.max(...row), 5);
      }
      // The probit approximation shrinks the logits: the uncertain predictive is flatter than softmax(f).
      for (let n = 0; n < M; n++) expect(p.maxProb[n]).toBeLessThanOrEqual(Math.max(...softmax(ref.f.subarray(n * C, (n + 1) * C))) + 1e-6);
      model.dispose();
    });
  }

  it('kron is exact when every example is the same (the KFAC scaling convention)', async () => {
    const ctx = await context();
    const model = mlp(ctx);
    const one = makeData(1, 15);
    const data: LaplaceData = { x: new Float32Array(N * IN).map((_, i) => one.x[i % IN]), labels: new Uint32Array(N).fill(1), count: N, shape: [IN] };
    const { phi, theta } = await reference(model, data.x, N);
    const la = await fitLaplace(model, data, { curvature: 'kron', priorPrecision: 2 });
    const k = la.hessian as { outputFactor: Float64Array; inputFactor: Float64Array };
    expectClose(kron(k.outputFactor, C, k.inputFactor, D + 1), denseGgn(theta, phi, N, D, C), 1e-5, 'B kron A vs GGN');
    expect(la.priorPrecision).toBe(2);
    model.dispose();
  });

  it("'mc' matches a float64 Monte Carlo of the same Gaussian over the logits (statistically)", async () => {
    const ctx = await context();
    const model = mlp(ctx);
    // Few examples and a weak prior, so that Sigma_f is wide and the sampled predictive differs clearly from softmax(f).
    const data = makeData(8, 16);
    const la = await fitLaplace(model, data, { curvature: 'kron', priorPrecision: 0.05 });
    const M = 6;
    const test = makeData(M, 17);
    const { phi } = await reference(model, test.x, M);
    const fs = la.functionSpace(phi, M);
    const T = 20000;
    const p = await la.predict({ data: test.x, shape: [M, IN] }, { method: 'mc', samples: T, seed: 5 });
    expect(p.samples).toBe(T);
    const again = await la.predict({ data: test.x, shape: [M, IN] }, { method: 'mc', samples: T, seed: 5, batchSize: 2 });
    expect(Array.from(again.mean)).toEqual(Array.from(p.mean));
    let separated = 0;
    for (let n = 0; n < M; n++) {
      const Tr = 200000;
      const ref = monteCarloSoftmax(fs.mean.subarray(n * C, (n + 1) * C), fs.covariance.subarray(n * C * C, (n + 1) * C * C), C, Tr, 100 + n);
      const plain = softmax(fs.mean.subarray(n * C, (n + 1) * C));
      for (let c = 0; c < C; c++) {
        const se = Math.sqrt(ref.variance[c] * (1 / T + 1 / Tr));
        const i = n * C + c;
        // 5 standard errors: 18 means, so a correct implementation fails about once in 10^5 runs.
        expect(Math.abs(p.mean[i] - ref.p[c]), `mean [${n}, ${c}]`).toBeLessThan(5 * se + 1e-6);
        // (p - p_bar)^2 <= |p - p_bar|, so its per-draw std is at most sqrt(var): the same bound.
        expect(Math.abs(p.epistemic[i] - ref.variance[c]), `epistemic [${n}, ${c}]`).toBeLessThan(5 * se + 1e-6);
        expect(Math.abs(p.aleatoric[i] - ref.aleatoric[c]), `aleatoric [${n}, ${c}]`).toBeLessThan(10 * se + 1e-6);
        if (Math.abs(ref.p[c] - plain[c]) > 20 * se) separated++;
        expect(p.epistemic[i] + p.aleatoric[i]).toBeCloseTo(p.mean[i] * (1 - p.mean[i]), 5);
      }
      const seH = ref.entropyStd * Math.sqrt(1 / T + 1 / Tr);
      expect(Math.abs(p.expectedEntropy[n] - ref.expectedEntropy), `E H [${n}]`).toBeLessThan(5 * seH + 1e-6);
      expect(p.mutualInformation[n]).toBeCloseTo(p.predictiveEntropy[n] - p.expectedEntropy[n], 5);
    }
    // The covariance matters: most means are many standard errors away from softmax(f).
    expect(separated).toBeGreaterThan(M);
    model.dispose();
  });

  it('a Bayesian last layer: theta* is its posterior mean mu, the features use the mean weights', async () => {
    const ctx = await context();
    const model = mlp(ctx, true);
    const data = makeData(N, 18);
    const { phi, theta } = await reference(model, data.x, N, ['fc1.W_mu', 'fc1.bias_mu', 'fc2.W_mu', 'fc2.bias_mu']);
    model.train();
    const la = await fitLaplace(model, data, { curvature: 'diag', priorPrecision: 1 });
    expect(model.training).toBe(true);
    expectClose(la.mapWeights, theta, 1e-7, 'theta* = mu');
    const ggn = denseGgn(theta, phi, N, D, C);
    expectClose((la.hessian as { diagonal: Float64Array }).diagonal, Array.from({ length: P }, (_, i) => ggn[i * P + i]), 1e-5, 'diag GGN at mu');
    model.dispose();
  });

  it('bad input: a named BayesError before any GPU work, and nothing changed', async () => {
    const ctx = await context();
    const model = mlp(ctx);
    const data = makeData(N, 19);
    const expectError = async (call: () => Promise<unknown>, pattern: RegExp) => {
      model.train();
      const before = ctx.memory().liveTensors;
      const err = await call().then(() => null, (e: unknown) => e);
      expect(err, String(pattern)).toBeInstanceOf(BayesError);
      expect((err as Error).message).toMatch(pattern);
      expect(model.training).toBe(true);
      expect(ctx.memory().liveTensors).toBe(before);
    };
    await expectError(() => fitLaplace(model, data, { curvature: 'full' as never }), /argument 'curvature' expected one of 'diag' \| 'kron', got "full"/);
    await expectError(() => fitLaplace(model, data, { priorPrecision: 0 }), /argument 'priorPrecision' expected a positive finite number or 'marglik', got 0/);
    await expectError(() => fitLaplace(model, data, { priorPrecision: -1 }), /'priorPrecision'/);
    await expectError(() => fitLaplace(model, data, { priorPrecision: Number.NaN }), /'priorPrecision'/);
    await expectError(() => fitLaplace(model, { ...data, labels: Uint32Array.from(data.labels, (l, i) => (i === 5 ? 3 : l)) }), /argument 'data.labels\[5\]' expected a class index below 3/);
    await expectError(() => fitLaplace(model, { x: data.x, count: N, shape: [IN] } as never), /argument 'data.labels'/);
    await expectError(() => fitLaplace(model, { ...data, shape: [5] }), /input.shape/);
    await expectError(() => fitLaplace(model, data, { batchSize: 0 }), /'batchSize'/);
    await expectError(() => fitLaplace(model, data, { prior: 1 } as never), /unknown key 'prior'/);

    const noLinear = new Sequential(ctx, { fc1: new Linear(IN, C), act: new ReLU() }, { inputShape: [IN] });
    await expectError(() => fitLaplace(noLinear, data), /last layer is a Linear or BBBLinear.*'act' \(ReLU\)/);
    noLinear.dispose();
    const regressor = new Regressor(ctx, { fc1: new Linear(IN, 2) }, { inputShape: [IN] });
    await expectError(() => fitLaplace(regressor, { ...data, labels: new Uint32Array(N) }), /expected a classifier/);
    regressor.dispose();

    const la = await fitLaplace(model, data, { priorPrecision: 1 });
    const x = { data: data.x.subarray(0, 2 * IN), shape: [2, IN] };
    await expectError(() => la.predict(x, { method: 'laplace' as never }), /argument 'method' expected one of 'probit' \| 'mc'/);
    await expectError(() => la.predict(x, { method: 'probit', samples: 10 }), /argument 'samples' expected nothing with method 'probit'/);
    await expectError(() => la.predict(x, { method: 'mc', samples: 0 }), /argument 'samples' expected an integer >= 1/);
    await expectError(() => la.predict({ data: data.x.subarray(0, 5), shape: [1, 5] }), /input.shape/);
    expect(() => la.logMarginalLikelihoodAt(0)).toThrow(/'priorPrecision'/);
    model.dispose();
  });
});
