/**
 * SVG charts of predictions, calibration and training, as strings: pure
 * TypeScript with no DOM and no GPU, so the same call draws into a web page
 * (element.innerHTML = svg), a worker's message, or a file written by Node
 * or Deno. The HTML report (buildReport) and the demo draw with these.
 *
 * Every chart is `xxxSvg(data, options)`, with the common options width,
 * height, title and colors (and classNames where classes appear); every
 * label is escaped, and the numbers drawn are repeated in data-* attributes
 * (documented per chart) for tests and tools.
 */
export { CHART_COLORS, escapeHtml, niceTicks, type ChartOptions } from './svg.js';
export { reliabilityDiagramSvg, type ReliabilityDiagramOptions, type ReliabilityData } from './reliability.js';
export { histogram, entropyHistogramSvg, entropyScatterSvg, type Histogram, type HistogramOptions, type EntropyHistogramOptions, type EntropyScatterSet, type EntropyScatterOptions } from './entropy.js';
export { uncertaintyBarsSvg, type ClassUncertainty, type UncertaintyBarsOptions } from './bars.js';
export { regressionChartSvg, type RegressionChartData, type RegressionChartOptions } from './regression.js';
export { trainingCurvesSvg, type CurveSeries, type TrainingCurvesOptions } from './curves.js';
export { riskCoverageSvg, type RiskCoverageCurve, type RiskCoverageChartOptions } from './selective.js';
