import { describe, expect, it } from 'vitest';
import { createContext } from '../../src/gpu/context.js';
import type { Context } from '../../src/gpu/context.js';
import { BBBLinear, type LayerType } from '../../src/nn/bayes.js';
import { Dropout, Flatten, Linear, ReLU, Softplus } from '../../src/nn/layers.js';
import type { Prediction, PredictProgress } from '../../src/nn/predict.js';
import { Sequential } from '../../src/nn/sequential.js';
import { Ensemble } from '../../src/uncertainty/ensemble.js';
import { context, expectClose, randomArray } from '../helpers.js';
import { ensembleReference } from '../reference/ensemble.js';
import { type PredictiveReference, decompose } from '../reference/uncertainty.js';

const SHAPE = [1, 4, 4];

/** A tiny Bayesian MLP on 1 x 4 x 4 inputs; rho = -1 (sigma ~ 0.31) so that its samples differ visibly. */
function bayesMember(ctx: Context, layerType: LayerType, seed: number, classes = 3): Sequential {
  const priors = { posterior_rho_initial: [-1, 0.1] as [number, number] };
  return new Sequential(ctx, {
    flatten: new Flatten(), fc1: new BBBLinear(16, 8, { layerType, seed, priors }), act1: new Softplus(), fc2: new BBBLinear(8, classes, { layerType, seed: seed + 1, priors }),
  }, { inputShape: SHAPE });
}

/** A tiny frequentist MLP (deterministic unless dropout is on). */
function plainMember(ctx: Context, seed: number, options: { classes?: number; dropout?: number; inputShape?: number[] } = {}): Sequential {
  const layers: Record<string, Linear | Flatten | ReLU | Dropout> = { flatten: new Flatten(), fc1: new Linear(null, 8, { seed }), act1: new ReLU() };
  if (options.dropout) layers.drop = new Dropout(options.dropout);
  layers.fc2 = new Linear(8, options.classes ?? 3, { seed: seed + 1 });
  return new Sequential(ctx, layers, { inputShape: options.inputShape ?? SHAPE });
}

/** A data set of N random 1 x 4 x 4 images with labels. */
function dataset(N: number, seed: number) {
  return { x: Float32Array.from(randomArray(N * 16, seed, -2, 2)), count: N, shape: SHAPE, labels: Uint32Array.from({ length: N }, (_, i) => i % 3) };
}

function compare(got: Prediction, want: PredictiveReference, rtol: number, what: string): void {
  expectClose(got.mean, want.mean, rtol, `${what} mean`);
  expectClose(got.epistemic, want.epistemic, rtol, `${what} epistemic`);
  expectClose(got.aleatoric, want.aleatoric, rtol, `${what} aleatoric`);
  expectClose(got.predictiveEntropy, want.predictiveEntropy, rtol, `${what} predictive entropy`);
  expectClose(got.expectedEntropy, want.expectedEntropy, rtol, `${what} expected entropy`);
  expectClose(got.mutualInformation, want.mutualInformation, rtol, `${what} mutual information`);
  expectClose(got.maxProb, want.maxProb, rtol, `${what} max probability`);
  for (let n = 0; n < got.count; n++) {
    const row = Array.from(got.mean.subarray(n * got.classes, (n + 1) * got.classes));
    expect(got.predicted[n], `${what} predicted[${n}]`).toBe(row.indexOf(Math.max(...row)));
  }
}

describe('Ensemble.predict (deep ensembles, Lakshminarayanan et al. 2017)', () => {
  const N = 7;
  const T = 5;

  it('equals the float64 decomposition over all M * T member samples (LRT, BBB and a deterministic member)', async () => {
    const ctx = await context();
    const members = [bayesMember(ctx, 'lrt', 3), bayesMember(ctx, 'bbb', 7), plainMember(ctx, 11)];
    const data = dataset(N, 21);
    const options = { samples: T, seed: 4, step: 2, batchSize: 3 };
    const own = [];
    for (const m of members) own.push(await m.predict(data, { ...options, keepSamples: true }));
    expect(own.map((p) => p.samples)).toEqual([T, T, 1]);

    const ensemble = new Ensemble(members);
    expect([ensemble.classes, [...ensemble.inputShape], ensemble.members.length]).toEqual([3, SHAPE, 3]);
    const seen: PredictProgress[] = [];
    const got = await ensemble.predict(data, { ...options, keepSamples: true, onProgress: (p) => void seen.push(p) });
    expect([got.count, got.classes, got.samples, got.method]).toEqual([N, 3, 3 * T, 'softmax']);
    expect(Array.from(got.labels!)).toEqual(Array.from(data.labels));
    // Three batches (3, 3, 1) per member, counted over all members.
    expect(seen).toEqual([3, 6, 7, 10, 13, 14, 17, 20, 21].map((done) => ({ done, total: 3 * N })));

    // Reference: the pooled samples, member m's each weighted 1 / (M T_m). Tolerance 2e-5: the members'
    // moments and entropies come from the f32 GPU reduction (predict.test.ts's tolerance); the reference uses their f32 probs.
    const want = ensembleReference(own.map((p) => ({ probs: p.probs!, samples: p.samples })), N, 3);
    compare(got, want, 2e-5, 'ensemble');
    // The disagreement between members is real here, not rounding.
    for (let n = 0; n < N; n++) expect(want.mutualInformation[n]).toBeGreaterThan(1e-3);

    // probs [M T, N, C]: member m's samples at rows m T ..; the deterministic member's one sample stands for T.
    const NC = N * 3;
    const expected = new Float32Array(3 * T * NC);
    for (let m = 0; m < 3; m++) for (let t = 0; t < T; t++) expected.set(own[m].probs!.subarray((own[m].samples === 1 ? 0 : t) * NC).subarray(0, NC), (m * T + t) * NC);
    expect(Array.from(got.probs!)).toEqual(Array.from(expected));
    // ...so the fields are the plain equal-weight decomposition of the rows of probs (test/reference/uncertainty.ts).
    compare(got, decompose(Float64Array.from(got.probs!), 3 * T, N, 3), 2e-5, 'equal-weight rows of probs');

    // Without keepSamples: the same numbers, no probs.
    const plain = await ensemble.predict(data, options);
    expect(plain.probs).toBeNull();
    expect(Array.from(plain.mean)).toEqual(Array.from(got.mean));
    expect(Array.from(plain.mutualInformation)).toEqual(Array.from(got.mutualInformation));
  });

  it('MC dropout members and the normalized method, from a tensor input', async () => {
    const ctx = await context();
    const members = [plainMember(ctx, 31, { dropout: 0.5 }), plainMember(ctx, 41, { dropout: 0.3 })];
    const x = ctx.tensor(Float32Array.from(randomArray(N * 16, 9, -2, 2)), [N, ...SHAPE]);
    const options = { samples: 4, mcDropout: true, method: 'normalized' as const, seed: 1 };
    const own = [];
    for (const m of members) own.push(await m.predict(x, { ...options, keepSamples: true }));
    const got = await new Ensemble(members).predict(x, options);
    x.dispose();
    expect([got.samples, got.method, got.labels]).toEqual([8, 'normalized', null]);
    compare(got, ensembleReference(own.map((p) => ({ probs: p.probs!, samples: p.samples })), N, 3), 2e-5, 'mc dropout');
  });

  it('a single-member ensemble is the member', async () => {
    const ctx = await context();
    const member = bayesMember(ctx, 'lrt', 5);
    const data = dataset(N, 22);
    const options = { samples: T, seed: 8, keepSamples: true };
    const want = await member.predict(data, options);
    const got = await new Ensemble([member]).predict(data, options);
    // The moments pass through float64 unchanged (x / 1, + 0^2): bit for bit.
    for (const key of ['mean', 'epistemic', 'aleatoric', 'expectedEntropy', 'maxProb', 'predicted', 'labels', 'probs'] as const) {
      expect(Array.from(got[key]!), key).toEqual(Array.from(want[key]!));
    }
    expect([got.count, got.classes, got.samples, got.method]).toEqual([want.count, want.classes, want.samples, want.method]);
    // H[p_bar] is recomputed in float64 from the f32 mean: equal up to the GPU's f32 entropy.
    expectClose(got.predictiveEntropy, want.predictiveEntropy, 1e-5, 'predictive entropy');
    expectClose(got.mutualInformation, want.mutualInformation, 1e-5, 'mutual information');
  });

  it('identical deterministic members have zero mutual information; different ones do not', async () => {
    const ctx = await context();
    const data = dataset(N, 23);
    const a = plainMember(ctx, 51);
    const twin = plainMember(ctx, 51); // built with the same seeds: the same weights
    const same = await new Ensemble([a, twin, a]).predict(data, { samples: 10 });
    expect(same.samples).toBe(3); // a deterministic member runs once; 3 members x 1
    expect(Array.from(same.epistemic)).toEqual(new Array(N * 3).fill(0));
    // MI = H[p_bar] (float64) - mean of the members' f32 GPU entropies: zero up to f32 rounding.
    for (let n = 0; n < N; n++) expect(same.mutualInformation[n]).toBeLessThan(1e-6);

    // Different members: MI is the Jensen-Shannon divergence of their distributions, computed by hand.
    const b = plainMember(ctx, 61);
    const pa = await a.predict(data, { keepSamples: true });
    const pb = await b.predict(data, { keepSamples: true });
    const diff = await new Ensemble([a, b]).predict(data);
    const H = (p: number[]) => p.reduce((s, v) => (v > 0 ? s - v * Math.log(v) : s), 0);
    for (let n = 0; n < N; n++) {
      const u = Array.from(pa.probs!.subarray(n * 3, n * 3 + 3));
      const v = Array.from(pb.probs!.subarray(n * 3, n * 3 + 3));
      const js = H(u.map((x, c) => (x + v[c]) / 2)) - (H(u) + H(v)) / 2;
      expect(js).toBeGreaterThan(1e-3);
      expect(Math.abs(diff.mutualInformation[n] - js), `example ${n}`).toBeLessThan(2e-5 * Math.log(3));
      // Epistemic per class: the members' variance ((u - v) / 2)^2.
      for (let c = 0; c < 3; c++) expect(diff.epistemic[n * 3 + c]).toBeCloseTo(((u[c] - v[c]) / 2) ** 2, 6);
    }
  });

  it('refuses bad members at construction, by name, and bad calls before any GPU work', async () => {
    const ctx = await context();
    const ten = () => plainMember(ctx, 1, { classes: 10 });
    expect(() => new Ensemble([])).toThrow(/Ensemble: argument 'members' expected a non-empty array of classifier models \(Sequential\), got \[\]/);
    expect(() => new Ensemble(undefined as unknown as Sequential[])).toThrow(/argument 'members' expected a non-empty array/);
    expect(() => new Ensemble([ten(), ten(), plainMember(ctx, 2, { classes: 5 })])).toThrow(/Ensemble: argument 'members\[2\]' has 5 classes, members\[0\] has 10/);
    expect(() => new Ensemble([plainMember(ctx, 3), plainMember(ctx, 4, { inputShape: [1, 2, 8] })])).toThrow(/argument 'members\[1\]' has input shape \[1, 2, 8\], members\[0\] has \[1, 4, 4\]/);
    expect(() => new Ensemble([plainMember(ctx, 3), new Sequential({ fc: new Linear(16, 3) }) as Sequential])).toThrow(/argument 'members\[1\]' expected a classifier model built on a context/);
    expect(() => new Ensemble([plainMember(ctx, 3), 'lenet' as unknown as Sequential])).toThrow(/argument 'members\[1\]' expected a classifier model/);
    const regressor = new Sequential(ctx, { flatten: new Flatten(), fc: new Linear(null, 2) }, { inputShape: SHAPE, task: 'regression' });
    expect(() => new Ensemble([plainMember(ctx, 3), regressor])).toThrow(/argument 'members\[1\]' expected a classifier \(task 'classification'.*\), got a model of task 'regression'/);
    const e = (() => {
      try {
        new Ensemble([ten(), ten(), plainMember(ctx, 2, { classes: 5 })]);
      } catch (err) {
        return err as { code?: string };
      }
    })();
    expect(e?.code).toBe('SHAPE_MISMATCH');

    const other = await createContext();
    try {
      const elsewhere = plainMember(other, 3);
      expect(() => new Ensemble([plainMember(ctx, 3), elsewhere])).toThrow(/Ensemble: argument 'members\[1\]' is a model on another device\/context than argument 'members\[0\]'/);
      // A member moved after construction is caught when predicting.
      const moving = plainMember(ctx, 6);
      const ensemble = new Ensemble([plainMember(ctx, 5), moving]);
      await moving.to(other);
      await expect(ensemble.predict(dataset(2, 1))).rejects.toMatchObject({ code: 'WRONG_DEVICE', message: expect.stringMatching(/Ensemble\.predict: argument 'members\[1\]' is a model on another device/) });
    } finally {
      other.destroy();
    }

    // mcDropout must hold for every member: refused before members[0] runs (no progress reported).
    const seen: PredictProgress[] = [];
    const mixed = new Ensemble([plainMember(ctx, 7, { dropout: 0.5 }), plainMember(ctx, 8)]);
    await expect(mixed.predict(dataset(2, 1), { mcDropout: true, onProgress: (p) => void seen.push(p) })).rejects.toThrow(/Ensemble\.predict: argument 'members\[1\]' expected a model with a Dropout layer of p > 0 for MC dropout/);
    expect(seen).toEqual([]);
    await expect(mixed.predict(dataset(2, 1), { onProgress: 3 as unknown as () => void })).rejects.toThrow(/Ensemble\.predict: argument 'onProgress' expected a function/);
    await expect(mixed.predict(dataset(2, 1), null as unknown as object)).rejects.toThrow(/Ensemble\.predict: argument 'options' expected an options object/);
    // Options and input are checked by the members' predict, before any GPU work.
    await expect(mixed.predict(dataset(2, 1), { samples: 0 })).rejects.toThrow(/argument 'samples' expected an integer >= 1, got 0/);
    await expect(mixed.predict({ x: new Float32Array(32), count: 2, shape: [2, 4, 4] })).rejects.toThrow(/shape/);
  });
});
