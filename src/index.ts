/**
 * bayesgpu: Bayesian CNNs (Bayes by Backprop, local reparameterization) on WebGPU.
 * The universal entry, for browsers and Deno; Node goes through node.ts, which adds Dawn and file I/O.
 */
export { BayesError, type BayesErrorCode } from './errors.js';

// Runtime
export { Context, createContext, grid, type Kernel, type MemoryInfo, type ContextOptions } from './gpu/context.js';
export { Tensor, type DType } from './gpu/tensor.js';
export { type AdapterDescription, describeAdapter, setGpuProvider } from './gpu/device.js';
export { type TuningTable, type GemmOptions, type TuningMode } from './gpu/tuning.js';
export { GEMM_VARIANTS, type GemmVariant } from './gpu/gemm_variants.js';

// Ops: one typed wrapper per shader family, for user-defined layers.
export * as ops from './ops/index.js';
export type { RandomKey } from './ops/random.js';

// Layers and models
export { Module, type Parameter, type Pass } from './nn/module.js';
export { Conv2d, Linear, ReLU, Softplus, MaxPool2d, Flatten, Dropout, BatchNorm2d, type ConvOptions } from './nn/layers.js';
export { BBBConv2d, BBBLinear, DEFAULT_PRIORS, type LayerType, type Priors, type BayesOptions } from './nn/bayes.js';
export { Sequential, type ForwardOptions, type ForwardResult } from './nn/sequential.js';
export {
  BBBLeNet, BBBAlexNet, BBB3Conv3FC, LeNet, AlexNet, ThreeConvThreeFC, Model, buildModel, MODEL_NAMES,
  type ModelName, type ModelConfig, type BayesModelOptions, type FrequentistModelOptions,
} from './nn/models.js';

// Training
export { Adam, type AdamConfig } from './train/adam.js';
export { beta, elbo, type BetaSchedule } from './train/elbo.js';
export { trainStep, lossAndGradients, predictLogProbs, evalBatch, type StepOptions, type StepResult, type EvalOptions } from './train/step.js';
export { fit, evaluate, type FloatDataset, type FitOptions, type FitResult, type EpochSummary, type BatchProgress, type FitProgress, type FitSnapshot } from './train/fit.js';
export { takeSnapshot, restoreSnapshot, isDeviceLost, runRecovering, type TrainingSnapshot, type RecoveryOptions, type RecoveryEvent } from './train/recovery.js';

// Data (pure decoders; Node file loaders are in the Node entry)
export { parseIdx, decodeIdx, type IdxArray } from './data/idx.js';
export { decodeMnist, mnistFileNames } from './data/mnist.js';
export { parseCifar10, parseCifar100, decodeCifar, cifarFileNames } from './data/cifar.js';
export { toFloatImages, rotateImages, flipHorizontal, augmentImages, type AugmentOptions } from './data/preprocess.js';
export { batches, permutation, splitTrainValid, shuffleInPlace, type Batch, type BatchOptions } from './data/batches.js';
export { Rng } from './data/random.js';
export type { ImageSet, Split } from './data/image_set.js';

// Checkpoints
export { encodeSafetensors, decodeSafetensors, readSafetensors, safetensorsBlob, type DecodedSafetensors } from './io/safetensors.js';
export { saveCheckpoint, loadCheckpoint, loadStateDict, restoreOptimizer, CHECKPOINT_FORMAT, type SaveOptions, type LoadOptions, type LoadedCheckpoint } from './io/checkpoint.js';

// Uncertainty
export { predict, predictDataset, predictiveDistribution, readPrediction, PROBABILITY_METHODS, type Prediction, type PredictOptions, type ProbabilityMethod, type DatasetPrediction } from './uncertainty/predict.js';
export { accuracy, nll, brierScore, reliability, auroc, aupr, oodDetection, classificationMetrics, type Reliability, type ReliabilityBin, type OodDetection, type ClassificationMetrics } from './uncertainty/metrics.js';
export { decodeIdxImages, decodePngImages, prepareOodImages, type OodSet, type OodTarget } from './uncertainty/ood.js';
export { buildReport, reliabilityDiagramSvg, entropyHistogramSvg, uncertaintyBarsSvg, regressionChartSvg, type ReportData } from './uncertainty/report.js';
export { HomoscedasticNoise, bayesianRegressor, trainRegression, predictWithUncertainty, regressionLossAndGradients, REGRESSION_PRIORS, type RegressionHead, type RegressorOptions, type RegressionData, type TrainRegressionOptions, type TrainRegressionResult, type RegressionEpoch, type PredictRegressionOptions, type RegressionPrediction } from './uncertainty/regression.js';
export { mcDropoutMLP, mcDropoutForward, checkMcDropout, dropoutLayers, type McDropoutMlpOptions } from './uncertainty/mcdropout.js';
export { needsReview, selectForLabeling, riskAwareSelect, riskAdjustedScores, type UncertaintyScores, type ReviewThresholds } from './uncertainty/decisions.js';
