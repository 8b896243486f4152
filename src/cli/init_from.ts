/**
 * `bayesgpu train --init-from FILE --moped DELTA`: a Bayesian model that starts from a trained
 * frequentist one (MOPED, Krishnan et al. 2020; src/nn/convert.ts). The file must hold a frequentist
 * network of the architecture `--model` names for the data set (every tensor by name and shape);
 * it is converted with the given delta and --layer-type, then trained as usual.
 */
import type { Context } from '../gpu/context.js';
import { loadModel } from '../io/checkpoint.js';
import { readFile } from '../io/node_files.js';
import { toBayesian } from '../nn/convert.js';
import { type ModelConfig, Model, modelLayers } from '../nn/models.js';
import { expectedParameters } from '../nn/registry.js';
import { Sequential } from '../nn/sequential.js';
import type { LayerType } from '../nn/bayes.js';
import { fail, forOption } from './common.js';

const EXPECTED = 'a frequentist model file of the architecture of --model (written by bayesgpu train --layer-type frequentist)';

/**
 * Loads the frequentist model in `path`, checks it against the frequentist variant of `config` (the
 * Bayesian model --model and the data set describe), and converts it. Resolves to the converted
 * model and the ModelConfig that describes it (with the file's activation).
 */
export async function initFromFrequentist(
  ctx: Context, path: string, config: ModelConfig, o: { delta: number; activationGiven?: 'softplus' | 'relu'; priorSigma?: number },
): Promise<{ model: Sequential; config: ModelConfig }> {
  const loaded = await forOption('init-from', EXPECTED, path, async () => loadModel(ctx, await readFile(path)));
  try {
    const inputShape = [config.inChannels, config.imageSize, config.imageSize];
    if (loaded.isBayesian) fail(`option '--init-from' expected ${EXPECTED}, but it holds a Bayesian network (its parameters include W_rho): ${path}`);
    // Every tensor by name and shape against the frequentist variant of the model (the activation holds no tensor).
    const want = expectedParameters(new Sequential(modelLayers({ ...config, bayesian: false, priors: undefined })), inputShape);
    const got = loaded.namedParameters();
    const mismatched: string[] = [];
    for (const [name, e] of want) {
      const p = got.get(name);
      if (!p) mismatched.push(`${name} (missing; expected [${e.shape.join(', ')}])`);
      else if (p.value.shape.join(',') !== e.shape.join(',')) mismatched.push(`${name} (shape [${p.value.shape.join(', ')}]; expected [${e.shape.join(', ')}])`);
    }
    for (const [name, p] of got) if (!want.has(name)) mismatched.push(`${name} (shape [${p.value.shape.join(', ')}]; not in ${config.model})`);
    if (mismatched.length > 0) fail(`option '--init-from' expected ${EXPECTED} (${config.model}, ${config.inChannels} channel(s), ${config.classes} classes), but its tensors differ: ${mismatched.join(', ')}: ${path}`);
    const problem = loaded instanceof Model && loaded.config.model !== config.model ? `it holds a ${loaded.config.model}, not the --model ${config.model}`
      : loaded.inputShape.join(',') !== inputShape.join(',') ? `its input shape is [${loaded.inputShape.join(', ')}], the data set's [${inputShape.join(', ')}]`
      : null;
    if (problem) fail(`option '--init-from' expected ${EXPECTED}, but ${problem}: ${path}`);
    const activation = loaded instanceof Model ? loaded.config.activation : config.activation;
    if (o.activationGiven !== undefined && o.activationGiven !== activation) {
      fail(`option '--activation' cannot change the network of '--init-from': the file's network uses ${activation}, got --activation ${o.activationGiven}`);
    }
    const model = await toBayesian(loaded, { layerType: config.layerType as LayerType, moped: { delta: o.delta, priorSigma: o.priorSigma ?? 'delta' } });
    return { model, config: { ...config, activation, priors: o.priorSigma !== undefined ? { prior_sigma: o.priorSigma } : undefined } };
  } finally {
    loaded.dispose();
  }
}
