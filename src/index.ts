/**
 * bayesgpu: Bayesian CNNs (Bayes by Backprop, local reparameterization) on WebGPU.
 * The universal entry, for browsers and Deno; Node goes through node.ts, which adds Dawn and file I/O.
 *
 * Everything the README documents comes from here; nothing else is public.
 */
export { BayesError, type BayesErrorCode } from './errors.js';

// Runtime: a context (one device), tensors on it, the adapter, the GEMM variants and their tuning.
export { Context, createContext, type MemoryInfo, type ContextOptions } from './gpu/context.js';
export { Tensor, type DType, type TypedArrayFor } from './gpu/tensor.js';
export { type AdapterDescription, type GpuProvider, describeAdapter, setGpuProvider } from './gpu/device.js';
export { type TuningTable, type GemmOptions, type TuningMode } from './gpu/tuning.js';
export { GEMM_VARIANTS, type GemmVariant } from './gpu/gemm_variants.js';

// Ops: one typed wrapper per shader family, for layers of your own (conventions in src/ops/index.ts).
export * as ops from './ops/index.js';
export type { RandomKey } from './ops/random.js';
export { PROBABILITY_METHODS, type ProbabilityMethod, type PredictiveTensors } from './ops/uncertainty.js';

// Layers, containers, models
export { Module, type Parameter, type Pass, type LayerConfig, type BuildState, STREAMS_PER_LAYER, passKey, setGrad, createParameter } from './nn/module.js';
export { Conv2d, Linear, ReLU, Softplus, MaxPool2d, Flatten, Dropout, BatchNorm2d, HomoscedasticNoise, GlobalAvgPool2d, ZeroPadShortcut, type ConvOptions } from './nn/layers.js';
export { BBBConv2d, BBBLinear, DEFAULT_PRIORS, LAYER_TYPES, type LayerType, type Priors, type BayesOptions, type ResolvedPriors, type Variational, type PriorTensors } from './nn/bayes.js';
export { toBayesian, MOPED_SIGMA_MIN, type ToBayesianOptions, type MopedOptions } from './nn/convert.js';
export { Sequential, Residual, Regressor, type BuiltModel, type ForwardOptions, type ForwardResult, type ModelOptions, type Task, type Preprocessing, type LayerList } from './nn/sequential.js';
export {
  BBBLeNet, BBBAlexNet, BBB3Conv3FC, BBBResNet20, LeNet, AlexNet, ThreeConvThreeFC, ResNet20, Model, buildModel, MODEL_NAMES,
  type ModelName, type ModelConfig, type BayesModelOptions, type FrequentistModelOptions, type NamedModelOptions, type ResNetOptions, type ResNetShortcut,
} from './nn/models.js';
export { registerLayer, layerTypes, layerFromConfig, type LayerFactory, type BuildLayer } from './nn/registry.js';

// Prediction: model.predict(input, options) and what it takes and returns
export { type Prediction, type RegressionPrediction, type PredictOptions, type PredictProgress } from './nn/predict.js';
export { type ModelInput, type ArrayInput, type DatasetInput, type ImageInput, type TypedArray } from './nn/input.js';
export { imagesToTensor, isImageSource, type RawImage, type ImageOptions, type ImageRegion } from './nn/image_input.js';

// Training
export { Adam, type AdamConfig } from './train/adam.js';
export { beta, elbo, type BetaSchedule } from './train/elbo.js';
export { trainStep, DEFAULT_BETA, type StepOptions, type StepResult, type StepFigures } from './train/step.js';
export { fit, evaluate, type FloatDataset, type TrainingData, type FitOptions, type FitResult, type EpochSummary, type BatchProgress, type FitProgress, type FitSnapshot, type EvaluateOptions } from './train/fit.js';
export { type RegressionData } from './train/regression.js';
export { sigmaStatistics, variationalWeightCount, DEFAULT_CHANCE_WARNING_STEPS, KL_DOMINANCE_RATIO, KL_DOMINANCE_NLL_FRACTION, CHANCE_STANDARD_ERRORS, type LayerSigma, type SigmaStats, type FitWarning, type FitWarningCode } from './train/diagnostics.js';
export { takeSnapshot, restoreSnapshot, isDeviceLost, type TrainingSnapshot, type RecoveryOptions, type RecoveryEvent } from './train/recovery.js';

// Data (pure decoders; Node file loaders are in the Node entry)
export { parseIdx, decodeIdx, type IdxArray, type IdxDType, type IdxData } from './data/idx.js';
export { decodeMnist, mnistFileNames, type MnistKind } from './data/mnist.js';
export { parseCifar10, parseCifar100, decodeCifar, cifarFileNames, type CifarKind, type CifarLabel, type CifarRecords } from './data/cifar.js';
export type { ByteSource } from './data/bytes.js';
export { toFloatImages, rotateImages, flipHorizontal, augmentImages, type AugmentOptions, type ToFloatOptions } from './data/preprocess.js';
export { batches, permutation, splitTrainValid, shuffleInPlace, type Batch, type BatchOptions, type BatchSource } from './data/batches.js';
export { Rng } from './data/random.js';
export type { ImageSet, Split } from './data/image_set.js';

// Saving and loading: any network of registered layers, its optimizer, and plain safetensors
export { saveModel, loadModel, loadOptimizer, loadStateDict, modelMetadata, MODEL_FORMAT, type SaveModelOptions } from './io/checkpoint.js';
export { encodeSafetensors, decodeSafetensors, readSafetensors, safetensorsBlob, type DecodedSafetensors, type DecodedTensor, type TensorEntry, type TensorData, type SafetensorsDType } from './io/safetensors.js';

// Uncertainty: metrics, out-of-distribution sets, decisions, the report
export { accuracy, nll, brierScore, reliability, auroc, aupr, oodDetection, classificationMetrics, type Reliability, type ReliabilityBin, type OodDetection, type OodScoreSource, type ClassificationMetrics } from './uncertainty/metrics.js';
export { decodeIdxImages, decodePngImages, prepareOodImages, type OodSet, type OodTarget, type RawImages } from './uncertainty/ood.js';
export { buildReport, type ReportData, type ReportMetrics, type ExampleUncertainty, type ReportConformal } from './uncertainty/report.js';
export { fitTemperature, TEMPERATURE_RANGE, type TemperatureFit, type TemperatureFitOptions } from './uncertainty/calibration.js';
export { calibrateConformal, conformalSets, conformalReport, conformalPrediction, type ConformalScore, type ConformalOptions, type ConformalPredictionOptions, type ConformalCalibration, type ConformalSets, type ConformalReport, type ConformalClassReport, type ConformalPredictionResult, type LabelledProbabilities } from './uncertainty/conformal.js';
export { riskCoverage, selectiveReport, type SelectiveRanking, type SelectiveSource, type RiskCoverageOptions, type RiskCoverage, type AccuracyAtCoverage, type SelectiveReport } from './uncertainty/selective.js';
export { fitLaplace, lastLayerFeatures, LastLayerLaplace, LAPLACE_CURVATURES, LAPLACE_PREDICT_METHODS, type LaplaceCurvature, type LaplacePredictMethod, type LaplaceData, type LaplaceOptions, type LaplacePredictOptions, type LaplaceHessian, type LastLayerFeatures, type LaplaceFunctionSpace } from './uncertainty/laplace.js';
export { Ensemble } from './uncertainty/ensemble.js';
export { updateBatchNorm, type UpdateBatchNormOptions } from './train/batchnorm_stats.js';
export { bayesianRegressor, REGRESSION_PRIORS, type RegressionHead, type RegressorOptions } from './uncertainty/regression.js';
export { mcDropoutMLP, type McDropoutMlpOptions } from './uncertainty/mcdropout.js';
export { needsReview, selectForLabeling, riskAwareSelect, riskAdjustedScores, type UncertaintyScores, type ReviewThresholds } from './uncertainty/decisions.js';

// Charts (SVG strings; pure TypeScript, no GPU): what the report and the demo draw
export {
  reliabilityDiagramSvg, entropyHistogramSvg, entropyScatterSvg, uncertaintyBarsSvg, regressionChartSvg, trainingCurvesSvg, riskCoverageSvg, type RiskCoverageCurve, type RiskCoverageChartOptions, histogram, niceTicks, escapeHtml, CHART_COLORS,
  type ChartOptions, type ReliabilityDiagramOptions, type ReliabilityData, type Histogram, type HistogramOptions, type EntropyHistogramOptions, type EntropyScatterSet, type EntropyScatterOptions,
  type ClassUncertainty, type UncertaintyBarsOptions, type RegressionChartData, type RegressionChartOptions, type CurveSeries, type TrainingCurvesOptions,
} from './charts/index.js';
