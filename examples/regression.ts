/**
 * Bayesian regression on a noisy sine, the seed tutorial's experiment:
 * y = sin(x) + eps, x ~ U(-3, 3), eps ~ N(0, 0.1^2). A Bayes-by-Backprop MLP
 * (1 -> 50 -> 50 -> head) is trained by the ELBO; its predictive std grows
 * outside the training range (epistemic uncertainty) while inside it stays
 * close to the noise level (aleatoric uncertainty).
 *
 * Run (Node): node bench/run.mjs regression [--head homoscedastic|heteroscedastic] [--epochs N] [--samples T]
 * (bench/regression.ts re-exports main). Prints the predictive mean, std and its two parts on a grid
 * from -7 to 7.
 */
import { type Context, type RegressionData, type RegressionHead, Rng, bayesianRegressor, fit } from '../src/index.js';

/** `count` points of y = sin(x) + N(0, noise^2) with x uniform on [lo, hi], from a seeded generator. */
export function noisySine(count: number, o: { noise?: number; lo?: number; hi?: number; seed?: number } = {}): RegressionData {
  const { noise = 0.1, lo = -3, hi = 3, seed = 1 } = o;
  const rng = new Rng(seed);
  const x = new Float32Array(count);
  const y = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    x[i] = lo + (hi - lo) * rng.nextFloat();
    y[i] = Math.sin(x[i]) + noise * rng.normal();
  }
  return { x, y, count, features: 1 };
}

/** The settings of the acceptance test (test/uncertainty/regression.test.ts): 200 Adam steps. */
export const SINE_SETTINGS = { count: 512, hidden: [50, 50], epochs: 100, batchSize: 256, lr: 0.03, samples: 1, beta: 1 };

export interface SineOptions {
  head?: RegressionHead;
  /** Homoscedastic head: noise std (initial or fixed) and whether it is learned. */
  noiseStd?: number;
  learnNoise?: boolean;
  epochs?: number;
  samples?: number;
  seed?: number;
  log?: (line: string) => void;
}

/** Trains the tutorial's model on noisySine(SINE_SETTINGS.count); returns the model, the data and the wall time. */
export async function trainSine(ctx: Context, o: SineOptions = {}) {
  const seed = o.seed ?? 1;
  const data = noisySine(SINE_SETTINGS.count, { seed });
  const model = bayesianRegressor(ctx, { features: 1, hidden: SINE_SETTINGS.hidden, head: o.head ?? 'heteroscedastic', noiseStd: o.noiseStd, learnNoise: o.learnNoise, seed });
  const started = performance.now();
  // The ELBO proper (beta 1) on every point (no validation split), and the model as the last epoch left it.
  const result = await fit(model, data, {
    epochs: o.epochs ?? SINE_SETTINGS.epochs, batchSize: SINE_SETTINGS.batchSize, lr: SINE_SETTINGS.lr, samples: o.samples ?? SINE_SETTINGS.samples, seed,
    beta: SINE_SETTINGS.beta, validFraction: 0, restoreBest: false,
    onEpoch: (e) => {
      if (e.epoch % 25 === 0 || e.epoch === e.epochs) o.log?.(`epoch ${e.epoch}: loss ${e.trainLoss.toFixed(1)}  nll ${e.trainNll.toFixed(3)}  kl ${e.kl.toFixed(1)}`);
    },
  });
  return { model, data, result, seconds: (performance.now() - started) / 1000 };
}

export async function main(args: string[]): Promise<void> {
  const { createContext } = await import('../src/node.js');
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const head = arg('head', 'heteroscedastic') as RegressionHead;
  const ctx = await createContext();
  try {
    const { model, seconds } = await trainSine(ctx, { head, epochs: Number(arg('epochs', String(SINE_SETTINGS.epochs))), samples: Number(arg('samples', String(SINE_SETTINGS.samples))), log: console.log });
    console.log(`trained (${head}) in ${seconds.toFixed(1)} s on ${ctx.adapterName}`);
    const grid = Float32Array.from({ length: 29 }, (_, i) => -7 + i * 0.5);
    const p = await model.predict({ data: grid, shape: [grid.length, 1] }, { samples: 100, seed: 7 });
    console.log('     x    sin(x)    mean     std  epist.std  aleat.std');
    for (let i = 0; i < grid.length; i++) {
      console.log(`${grid[i].toFixed(1).padStart(6)} ${Math.sin(grid[i]).toFixed(3).padStart(8)} ${p.mean[i].toFixed(3).padStart(8)} ${p.std[i].toFixed(3).padStart(7)} ${Math.sqrt(p.epistemicVar[i]).toFixed(3).padStart(10)} ${Math.sqrt(p.aleatoricVar[i]).toFixed(3).padStart(10)}`);
    }
    model.dispose();
  } finally {
    ctx.destroy();
  }
}
