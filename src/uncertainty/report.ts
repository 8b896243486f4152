/**
 * A self-contained HTML report of one evaluation: inline SVG charts and inline
 * PNG images (data URLs), no external assets, no script that runs. Every chart
 * is drawn from the run's numbers, which are also embedded twice: as data-*
 * attributes on the drawn elements, and as one JSON block
 * (<script type="application/json" id="bayesgpu-report-data">) for tools.
 *
 * The charts are the chart module's (src/charts): the reliability diagram,
 * the entropy histograms (in distribution against OOD) and the per-class
 * uncertainty bars of one image of each set; when given, the risk-coverage
 * chart of selective classification with its AURC table (selective.ts) and a
 * table of conformal prediction sets' coverage and size (conformal.ts).
 *
 * Pure string building: runs in browsers as well as in Node (the CLI writes the file).
 */
import { encode as encodePng } from 'fast-png';
import { type ClassUncertainty, entropyHistogramSvg, escapeHtml, histogram, reliabilityDiagramSvg, riskCoverageSvg, uncertaintyBarsSvg } from '../charts/index.js';
import { fmt } from '../charts/svg.js';
import { shapeError } from '../errors.js';
import type { ConformalClassReport, ConformalScore } from './conformal.js';
import type { OodDetection, Reliability } from './metrics.js';
import type { RiskCoverage, SelectiveReport } from './selective.js';

/** One image's predictive distribution and per-class uncertainty (arrays over classes), as the report shows it. */
export interface ExampleUncertainty extends ClassUncertainty {
  /** The set the image comes from. */
  set: string;
  /** The image, [C, H, W] in [0, 1]. */
  image: Float32Array;
  shape: readonly [number, number, number] | readonly number[];
  /** The true class, when known. */
  label?: number | null;
  predictiveEntropy?: number;
  mutualInformation?: number;
}

// ------------------------------------------------------------------ images

function base64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** An image [C, H, W] in [0, 1] (C = 1 or 3) as a PNG data URL. */
export function imageDataUrl(image: ArrayLike<number>, shape: readonly number[]): string {
  const [channels, height, width] = shape;
  if (channels !== 1 && channels !== 3) throw shapeError('imageDataUrl', 'shape', '[1 or 3, H, W]', shape);
  if (image.length !== channels * height * width) throw shapeError('imageDataUrl', 'image', `${channels * height * width} values for shape [${shape.join(', ')}]`, [image.length]);
  const pixels = height * width;
  const data = new Uint8Array(pixels * channels);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < channels; c++) data[p * channels + c] = Math.round(Math.min(Math.max(image[c * pixels + p], 0), 1) * 255);
  }
  return `data:image/png;base64,${base64(encodePng({ width, height, data, channels, depth: 8 }))}`;
}

// ------------------------------------------------------------------ the report

export interface ReportMetrics {
  accuracy: number;
  accuracyMeanWeights?: number;
  nll: number;
  brier: number;
  ece: number;
  mce: number;
  count: number;
}

export interface ReportData {
  title?: string;
  /** One line describing the model, e.g. 'lenet (BBB-LRT), model.safetensors'. */
  model: string;
  dataset: string;
  samples: number;
  method: string;
  adapter?: string;
  metrics: ReportMetrics;
  reliability: Reliability;
  /** Predictive entropy of every in-distribution test image. */
  inDistribution: { name: string; predictiveEntropy: ArrayLike<number> };
  ood: { name: string; predictiveEntropy: ArrayLike<number>; detection: OodDetection }[];
  /** Number of classes: the entropy axis runs to log C. */
  classes: number;
  /** One image of each set with its per-class uncertainty. */
  examples: ExampleUncertainty[];
  classNames?: readonly string[];
  /** Selective classification (selectiveReport's result): a risk-coverage chart and an AURC / accuracy-at-coverage table. */
  selective?: SelectiveReport;
  /** Conformal prediction sets (conformalPrediction's results, e.g. LAC and APS at one alpha): one table row each. */
  conformal?: readonly ReportConformal[];
  /** Extra charts (e.g. regressionChartSvg or trainingCurvesSvg output) appended as they are. */
  extraSections?: { title: string; svg: string }[];
}

/** One conformal result as the report shows it; a ConformalPredictionResult (conformal.ts) is one. */
export interface ReportConformal {
  alpha: number;
  score: ConformalScore;
  randomized?: boolean;
  qhat: number;
  /** Empirical coverage on the test examples. */
  coverage: number;
  meanSetSize: number;
  emptySets?: number;
  /** Test examples. */
  count?: number;
  /** Calibration examples. */
  calibrationCount?: number;
  /** Per true class: the table shows the lowest class coverage. */
  byClass?: readonly ConformalClassReport[];
}

function selectiveSection(selective: SelectiveReport): { html: string; embedded: object } {
  const curves = (['maxProb', 'entropy', 'mutualInformation'] as const).map((k) => selective[k]).filter((c): c is RiskCoverage => c !== undefined);
  const names: Record<string, string> = { maxProb: 'max probability', entropy: 'predictive entropy', mutualInformation: 'mutual information' };
  const coverages = curves[0]?.accuracyAtCoverage.map((a) => a.coverage) ?? [];
  const head = `<tr><th>ranking</th><th>AURC</th><th>E-AURC</th><th>optimal AURC</th>${coverages.map((c) => `<th>accuracy at ${fmt(100 * c, 0)}% coverage</th>`).join('')}</tr>`;
  const rows = curves.map((c) => `<tr data-ranking="${c.by}"><td>${escapeHtml(names[c.by])}</td><td data-aurc="${c.aurc}">${fmt(c.aurc)}</td><td data-eaurc="${c.eaurc}">${fmt(c.eaurc)}</td><td>${fmt(c.optimalAurc)}</td>` +
    `${c.accuracyAtCoverage.map((a) => `<td data-coverage="${a.coverage}" data-accuracy="${a.accuracy}">${fmt(a.accuracy)}</td>`).join('')}</tr>`).join('');
  // 720 px: one legend row holds the three names with their AURCs.
  const chart = riskCoverageSvg(curves.map((c) => ({ name: names[c.by], by: c.by, coverage: c.coverage, risk: c.risk, aurc: c.aurc })), { width: 720, height: 340 });
  const html = `<h2>Selective classification</h2>
<p class="meta">Answer only the most confident examples: the error rate among those answered against the fraction answered (Geifman &amp; El-Yaniv 2017). AURC: the area under that curve; E-AURC: AURC minus that of a perfect ranking (Geifman et al. 2019).</p>
<table class="selective"><thead>${head}</thead><tbody>${rows}</tbody></table>
<div class="row">${chart}</div>`;
  const embedded = curves.map((c) => ({ by: c.by, aurc: c.aurc, eaurc: c.eaurc, optimalAurc: c.optimalAurc, accuracyAtCoverage: c.accuracyAtCoverage, count: c.count, errors: c.errors }));
  return { html, embedded };
}

function conformalSection(conformal: readonly ReportConformal[]): { html: string; embedded: object } {
  const lowest = (r: ReportConformal) => {
    const covered = (r.byClass ?? []).filter((c) => c.count > 0).map((c) => c.coverage);
    return covered.length ? Math.min(...covered) : Number.NaN;
  };
  const rows = conformal.map((r) => `<tr data-score="${escapeHtml(r.score)}" data-alpha="${r.alpha}"><td>${escapeHtml(r.score.toUpperCase())}${r.randomized ? ' (randomized)' : ''}</td><td>${fmt(r.alpha, 3)}</td><td>${fmt(1 - r.alpha, 3)}</td>` +
    `<td data-coverage="${r.coverage}">${fmt(r.coverage)}</td><td data-mean-set-size="${r.meanSetSize}">${fmt(r.meanSetSize, 3)}</td><td>${r.emptySets ?? '–'}</td><td>${fmt(r.qhat)}</td><td>${fmt(lowest(r))}</td>` +
    `<td>${r.calibrationCount ?? '–'} / ${r.count ?? '–'}</td></tr>`).join('');
  const html = `<h2>Conformal prediction sets</h2>
<p class="meta">Split conformal (Angelopoulos &amp; Bates 2021): sets calibrated on held-out examples to hold the label with probability at least 1 − α. LAC: 1 − p<sub>y</sub>; APS: the probability ranked at or above y.</p>
<table class="conformal"><thead><tr><th>score</th><th>α</th><th>target coverage</th><th>coverage</th><th>mean set size</th><th>empty sets</th><th>q̂</th><th>lowest class coverage</th><th>calibration / test</th></tr></thead><tbody>${rows}</tbody></table>`;
  const embedded = conformal.map((r) => ({ alpha: r.alpha, score: r.score, randomized: r.randomized ?? false, qhat: r.qhat, coverage: r.coverage, meanSetSize: r.meanSetSize, emptySets: r.emptySets ?? null, count: r.count ?? null, calibrationCount: r.calibrationCount ?? null,
    byClass: (r.byClass ?? []).map((c) => ({ ...c, coverage: Number.isNaN(c.coverage) ? null : c.coverage, meanSetSize: Number.isNaN(c.meanSetSize) ? null : c.meanSetSize })) }));
  return { html, embedded };
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1150px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; } th:first-child, td:first-child { text-align: left; }
.chart text { font: 11px system-ui, sans-serif; fill: #333; } .chart .title { font-size: 13px; font-weight: 600; } .chart .label { font-size: 12px; }
.chart .grid { stroke: #eee; } .chart .axis { stroke: #555; } .chart .diagonal { stroke: #888; stroke-dasharray: 4 3; }
.row { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.example { display: flex; gap: 14px; align-items: center; margin: 10px 0; }
.example img { width: 112px; height: 112px; image-rendering: pixelated; border: 1px solid #ccc; }
.meta { color: #666; font-size: 12px; } .set { font-weight: 600; }
`;

/** The whole report as one HTML document. */
export function buildReport(data: ReportData): string {
  const maxEntropy = Math.log(data.classes);
  const bins = 30;
  const histograms = [
    histogram(data.inDistribution.predictiveEntropy, { name: data.inDistribution.name, lo: 0, hi: maxEntropy, bins }),
    ...data.ood.map((o) => histogram(o.predictiveEntropy, { name: o.name, lo: 0, hi: maxEntropy, bins })),
  ];
  const m = data.metrics;
  const metricRows: [string, number | undefined][] = [
    [`accuracy (MC average of ${data.samples} samples)`, m.accuracy],
    ['accuracy (mean weights)', m.accuracyMeanWeights],
    ['NLL (nats)', m.nll],
    ['Brier score', m.brier],
    ['ECE (15 bins)', m.ece],
    ['MCE (15 bins)', m.mce],
  ];
  const oodRows = data.ood.map((o) => `<tr data-ood="${escapeHtml(o.name)}"><td>${escapeHtml(o.name)}</td><td>${o.predictiveEntropy.length}</td>` +
    `<td>${fmt(o.detection.aurocEntropy)}</td><td>${fmt(o.detection.aurocMutualInformation)}</td><td>${fmt(o.detection.aurocMaxProb)}</td><td>${fmt(o.detection.auprEntropy)}</td></tr>`).join('');
  const examples = data.examples.map((e) => {
    const top = Array.from(e.mean).reduce((best, p, c, all) => (p > all[best] ? c : best), 0);
    const name = (c: number) => data.classNames?.[c] ?? String(c);
    return `<div class="example"><img alt="${escapeHtml(e.set)}" src="${imageDataUrl(e.image, e.shape)}"/>` +
      `<div><div class="set">${escapeHtml(e.set)}</div><div>${uncertaintyBarsSvg(e, { classNames: data.classNames })}</div>` +
      `<div class="meta">predicted ${escapeHtml(name(top))} (p̄ = ${fmt(e.mean[top], 3)})${e.label !== undefined && e.label !== null ? `, label ${escapeHtml(name(e.label))}` : ''}` +
      `${e.predictiveEntropy !== undefined ? `, H[p̄] = ${fmt(e.predictiveEntropy, 3)}` : ''}${e.mutualInformation !== undefined ? `, MI = ${fmt(e.mutualInformation, 4)}` : ''}</div></div></div>`;
  }).join('');
  const selective = data.selective ? selectiveSection(data.selective) : null;
  const conformal = data.conformal && data.conformal.length ? conformalSection(data.conformal) : null;
  const embedded = {
    model: data.model, dataset: data.dataset, samples: data.samples, method: data.method, adapter: data.adapter ?? null, classes: data.classes,
    metrics: m,
    reliability: { ece: data.reliability.ece, mce: data.reliability.mce, bins: data.reliability.bins.map((b) => ({ ...b, confidence: Number.isNaN(b.confidence) ? null : b.confidence, accuracy: Number.isNaN(b.accuracy) ? null : b.accuracy })) },
    entropyHistograms: histograms,
    ood: data.ood.map((o) => ({ name: o.name, count: o.predictiveEntropy.length, ...o.detection })),
    examples: data.examples.map((e) => ({ set: e.set, label: e.label ?? null, mean: Array.from(e.mean), epistemic: Array.from(e.epistemic), aleatoric: Array.from(e.aleatoric), predictiveEntropy: e.predictiveEntropy ?? null, mutualInformation: e.mutualInformation ?? null })),
    ...(selective ? { selective: selective.embedded } : {}),
    ...(conformal ? { conformal: conformal.embedded } : {}),
  };
  // JSON inside <script>: '<' is escaped so that no '</script>' can end the block early.
  const json = JSON.stringify(embedded).replace(/</g, '\\u003c');
  const title = data.title ?? `bayesgpu evaluation: ${data.model} on ${data.dataset}`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="meta">${escapeHtml(data.model)} · ${escapeHtml(data.dataset)} (${m.count} test images) · ${data.samples} Monte Carlo samples · probabilities: ${escapeHtml(data.method)}${data.adapter ? ` · ${escapeHtml(data.adapter)}` : ''}</p>
<h2>Classification</h2>
<table class="metrics"><tbody>${metricRows.filter(([, v]) => v !== undefined).map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td data-metric="${escapeHtml(k)}">${fmt(v!)}</td></tr>`).join('')}</tbody></table>
<div class="row">${reliabilityDiagramSvg(data.reliability)}</div>
<h2>Out-of-distribution detection</h2>
${data.ood.length ? `<table class="ood"><thead><tr><th>OOD set</th><th>images</th><th>AUROC entropy</th><th>AUROC MI</th><th>AUROC max prob</th><th>AUPR entropy</th></tr></thead><tbody>${oodRows}</tbody></table>` : '<p>No OOD set was evaluated.</p>'}
<div class="row">${entropyHistogramSvg(histograms, { maxEntropy })}</div>
<h2>Uncertainty of single images</h2>
<p class="meta">Epistemic: mean over samples of (p̂ − p̄)²; aleatoric: mean of p̂ − p̂² (Kwon et al. 2020; Shridhar et al. 2019), per class.</p>
${examples}
${selective ? selective.html : ''}
${conformal ? conformal.html : ''}
${(data.extraSections ?? []).map((s) => `<h2>${escapeHtml(s.title)}</h2><div class="row">${s.svg}</div>`).join('\n')}
<script type="application/json" id="bayesgpu-report-data">${json}</script>
</body></html>
`;
}
