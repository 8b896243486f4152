/**
 * The public surface: what the package entry exports, and its API reference.
 * - Internals stay internal: the names that leaked from 0.1 are not exported, and every value the
 *   entry exports is one the README or the reference documents (the list below is the contract;
 *   a new export must be added here on purpose).
 * - TypeDoc (`npm run docs`) builds the reference with no warning: every type a public signature
 *   names is exported, and no doc comment links nowhere.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as universal from '../../src/index.js';
import * as node from '../../src/node.js';
import { ROOT } from '../../scripts/build.mjs';

const VALUES = [
  'AlexNet', 'Adam', 'LAYER_TYPES', 'MOPED_SIGMA_MIN', 'toBayesian', 'DEFAULT_CHANCE_WARNING_STEPS', 'KL_DOMINANCE_RATIO', 'KL_DOMINANCE_NLL_FRACTION', 'CHANCE_STANDARD_ERRORS', 'sigmaStatistics', 'variationalWeightCount', 'BBB3Conv3FC', 'BBBAlexNet', 'BBBConv2d', 'BBBLeNet', 'BBBLinear', 'BBBResNet20', 'ResNet20', 'GlobalAvgPool2d', 'ZeroPadShortcut', 'BatchNorm2d', 'BayesError', 'CHART_COLORS', 'Context', 'Conv2d',
  'DEFAULT_BETA', 'DEFAULT_PRIORS', 'Dropout', 'Flatten', 'GEMM_VARIANTS', 'HomoscedasticNoise', 'LeNet', 'Linear', 'MODEL_FORMAT', 'MODEL_NAMES', 'MaxPool2d',
  'Model', 'Module', 'PROBABILITY_METHODS', 'REGRESSION_PRIORS', 'ReLU', 'Regressor', 'Residual', 'Rng', 'STREAMS_PER_LAYER', 'Sequential', 'Softplus', 'Tensor',
  'ThreeConvThreeFC', 'accuracy', 'augmentImages', 'aupr', 'auroc', 'batches', 'bayesianRegressor', 'beta', 'brierScore', 'buildModel', 'buildReport',
  'cifarFileNames', 'classificationMetrics', 'createContext', 'createParameter', 'decodeCifar', 'decodeIdx', 'decodeIdxImages', 'decodeMnist',
  'decodePngImages', 'decodeSafetensors', 'describeAdapter', 'elbo', 'encodeSafetensors', 'entropyHistogramSvg', 'entropyScatterSvg', 'escapeHtml',
  'evaluate', 'fit', 'flipHorizontal', 'histogram', 'imagesToTensor', 'isDeviceLost', 'isImageSource', 'layerFromConfig', 'layerTypes', 'loadModel',
  'loadOptimizer', 'loadStateDict', 'mcDropoutMLP', 'mnistFileNames', 'modelMetadata', 'needsReview', 'niceTicks', 'nll', 'oodDetection', 'ops',
  'parseCifar10', 'parseCifar100', 'parseIdx', 'passKey', 'permutation', 'prepareOodImages', 'readSafetensors', 'registerLayer', 'regressionChartSvg',
  'reliability', 'reliabilityDiagramSvg', 'restoreSnapshot', 'riskAdjustedScores', 'riskAwareSelect', 'rotateImages', 'safetensorsBlob', 'saveModel',
  'selectForLabeling', 'setGpuProvider', 'setGrad', 'shuffleInPlace', 'splitTrainValid', 'takeSnapshot', 'toFloatImages', 'trainStep', 'trainingCurvesSvg',
  'uncertaintyBarsSvg', 'fitTemperature', 'TEMPERATURE_RANGE', 'calibrateConformal', 'conformalSets', 'conformalReport', 'conformalPrediction',
  'riskCoverage', 'selectiveReport', 'riskCoverageSvg', 'fitLaplace', 'lastLayerFeatures', 'LastLayerLaplace', 'LAPLACE_CURVATURES',
  'LAPLACE_PREDICT_METHODS', 'Ensemble', 'updateBatchNorm',
].sort();
const NODE_ONLY = ['NAMED_OOD_SETS', 'decodeImage', 'loadCifar', 'loadMnist', 'loadModelFile', 'loadNamedOodSet', 'loadOodSet', 'readFile', 'readImageFile', 'saveFile', 'saveModelFile', 'saveSafetensorsFile', 'loadSafetensorsFile'].sort();

describe('the public surface', () => {
  it('the universal entry exports exactly the documented values, and none of the internals 0.1 leaked', () => {
    expect(Object.keys(universal).sort()).toEqual(VALUES);
    for (const internal of ['grid', 'Kernel', 'keyUniforms', 'readPrediction', 'CHECKPOINT_FORMAT', 'saveCheckpoint', 'loadCheckpoint', 'ReportPacer', 'lossAndGradients', 'predictLogProbs']) {
      expect(Object.keys(universal), internal).not.toContain(internal);
      expect(Object.keys(universal.ops), internal).not.toContain(internal);
    }
  });

  it('the Node entry adds Dawn and the file functions to it', () => {
    expect(Object.keys(node).sort()).toEqual([...VALUES, ...NODE_ONLY].sort());
  });

  it('TypeDoc builds the API reference without a warning (every type a public signature names is exported)', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--emit', 'none', '--treatWarningsAsErrors'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  }, 150_000);
});
