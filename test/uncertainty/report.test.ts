import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode as decodePng, encode as encodePng } from 'fast-png';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../cli/run_cli.js';
import { saveModelFile } from '../../src/io/checkpoint_files.js';
import { BBBLeNet } from '../../src/nn/models.js';
import { oodDetection, reliability } from '../../src/uncertainty/metrics.js';
import { histogram, niceTicks, regressionChartSvg } from '../../src/charts/index.js';
import { type ReportData, buildReport, imageDataUrl } from '../../src/uncertainty/report.js';
import { context, rng } from '../helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'bayesgpu-report-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** All values of attribute `name` on elements whose opening tag matches `selector` (a regex source). */
function attributes(html: string, selector: string, name: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(new RegExp(`<${selector}[^>]*>`, 'g'))) {
    const a = new RegExp(`\\s${name}="([^"]*)"`).exec(m[0]);
    if (a) out.push(a[1]);
  }
  return out;
}

/** The SVG element with data-chart="name" (the k-th one). */
function chart(html: string, name: string, k = 0): string {
  const all = [...html.matchAll(new RegExp(`<svg[^>]*data-chart="${name}"[\\s\\S]*?</svg>`, 'g'))];
  expect(all.length, `charts '${name}'`).toBeGreaterThan(k);
  return all[k][0];
}

function embedded(html: string): Record<string, any> {
  const m = /<script type="application\/json" id="bayesgpu-report-data">([\s\S]*?)<\/script>/.exec(html);
  expect(m, 'embedded JSON block').not.toBeNull();
  return JSON.parse(m![1]);
}

function syntheticReport(): ReportData {
  const r = rng(3);
  const N = 200;
  const C = 10;
  const probs = new Float64Array(N * C);
  const labels: number[] = [];
  for (let i = 0; i < N; i++) {
    const top = Math.floor(r() * C);
    const conf = 0.3 + 0.7 * r();
    for (let c = 0; c < C; c++) probs[i * C + c] = c === top ? conf : (1 - conf) / (C - 1);
    labels.push(r() < conf ? top : (top + 1) % C);
  }
  const rel = reliability(probs, labels, C);
  const inEntropy = Float64Array.from({ length: N }, () => r() * 0.8);
  const oodEntropy = Float64Array.from({ length: 150 }, () => 0.5 + r() * 1.8);
  const inScores = { predictiveEntropy: inEntropy, mutualInformation: inEntropy.map((v) => v / 10), maxProb: inEntropy.map((v) => 1 - v / 3) };
  const oodScores = { predictiveEntropy: oodEntropy, mutualInformation: oodEntropy.map((v) => v / 8), maxProb: oodEntropy.map((v) => 1 - v / 3) };
  const image = Float32Array.from({ length: 32 * 32 }, (_, i) => ((i % 32) + Math.floor(i / 32)) / 62);
  const mean = Float64Array.from({ length: C }, (_, c) => (c === 3 ? 0.82 : 0.02));
  return {
    model: 'lenet (BBB-LRT), <synthetic> & "quoted"', dataset: 'mnist', samples: 25, method: 'softmax', adapter: 'test adapter', classes: C,
    metrics: { accuracy: 0.91, accuracyMeanWeights: 0.9, nll: 0.31, brier: 0.14, ece: rel.ece, mce: rel.mce, count: N },
    reliability: rel,
    inDistribution: { name: 'mnist test', predictiveEntropy: inEntropy },
    ood: [{ name: 'fashion-mnist (test split)', predictiveEntropy: oodEntropy, detection: oodDetection(inScores, oodScores) }],
    examples: [
      { set: 'mnist test image 0', image, shape: [1, 32, 32], label: 3, mean, epistemic: mean.map((p) => p * 0.01), aleatoric: mean.map((p) => p - p * p), predictiveEntropy: 0.8, mutualInformation: 0.05 },
      { set: 'ood image 0', image: image.map((v) => 1 - v), shape: [1, 32, 32], label: null, mean, epistemic: mean.map((p) => p * 0.03), aleatoric: mean.map((p) => p * 0.5), predictiveEntropy: 1.2 },
    ],
  };
}

describe('HTML report', () => {
  it('is self-contained and every chart is built from the given numbers', () => {
    const data = syntheticReport();
    const html = buildReport(data);
    // Self-contained: no external resources, and the only script is inert JSON.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toContain('&lt;synthetic&gt; &amp; &quot;quoted&quot;');

    // Reliability diagram: one bar per bin, carrying that bin's count, confidence and accuracy.
    const rel = chart(html, 'reliability');
    expect(attributes(rel, 'svg', 'data-ece')).toEqual([String(data.reliability.ece)]);
    expect(attributes(rel, 'rect class="bin[^"]*"', 'data-count').map(Number)).toEqual(data.reliability.bins.map((b) => b.count));
    expect(attributes(rel, 'rect class="bin[^"]*"', 'data-accuracy').map(Number)).toEqual(data.reliability.bins.map((b) => b.accuracy));
    // A non-empty bar's height is its accuracy times the plot height (top 48, bottom 400 - 44 = 356 in a 400 px chart),
    // and the confidence tick sits at its mean confidence.
    for (const [k, b] of data.reliability.bins.entries()) {
      if (b.count === 0) continue;
      const bar = new RegExp(`<rect class="bin" data-bin="${k}"[^>]*>`).exec(rel)![0];
      expect(Number(/ height="([^"]+)"/.exec(bar)![1])).toBeCloseTo(b.accuracy * (356 - 48), 1);
      const tick = new RegExp(`<line class="confidence" data-bin="${k}"[^>]*>`).exec(rel)![0];
      expect(Number(/ y1="([^"]+)"/.exec(tick)![1])).toBeCloseTo(356 - b.confidence * (356 - 48), 1);
    }

    // Entropy histograms: in-distribution and OOD, counts as histogram() gives them over [0, log C].
    const hist = chart(html, 'entropy-histogram');
    for (const [s, values] of [[0, data.inDistribution.predictiveEntropy], [1, data.ood[0].predictiveEntropy]] as const) {
      const want = histogram(values, { lo: 0, hi: Math.log(10), bins: 30 });
      expect(attributes(hist, `rect class="hbar" data-set="${s}"`, 'data-count').map(Number)).toEqual(want.counts);
      expect(want.counts.reduce((a, b) => a + b, 0)).toBe(values.length);
    }

    // Per-class bars and the image of each example.
    for (const [i, e] of data.examples.entries()) {
      const bars = chart(html, 'uncertainty-bars', i);
      expect(attributes(bars, 'g class="class"', 'data-epistemic').map(Number)).toEqual(Array.from(e.epistemic));
      expect(attributes(bars, 'g class="class"', 'data-aleatoric').map(Number)).toEqual(Array.from(e.aleatoric));
      // Each panel draws its own values: p̄, epistemic, aleatoric.
      expect(attributes(bars, 'rect class="mean"', 'data-value').map(Number)).toEqual(Array.from(e.mean));
      expect(attributes(bars, 'rect class="epistemic"', 'data-value').map(Number)).toEqual(Array.from(e.epistemic));
      expect(attributes(bars, 'rect class="aleatoric"', 'data-value').map(Number)).toEqual(Array.from(e.aleatoric));
    }
    const images = attributes(html, 'img', 'src');
    expect(images).toHaveLength(2);
    const png = decodePng(Buffer.from(images[0].replace('data:image/png;base64,', ''), 'base64'));
    expect([png.width, png.height, png.channels]).toEqual([32, 32, 1]);
    expect(Array.from(png.data)).toEqual(Array.from(data.examples[0].image, (v) => Math.round(v * 255)));

    // The JSON block carries the same numbers.
    const j = embedded(html);
    expect(j.metrics).toEqual(data.metrics);
    expect(j.reliability.bins.map((b: { count: number }) => b.count)).toEqual(data.reliability.bins.map((b) => b.count));
    expect(j.ood[0].aurocEntropy).toBe(data.ood[0].detection.aurocEntropy);
    expect(j.examples[1].epistemic).toEqual(Array.from(data.examples[1].epistemic));
    expect(j.entropyHistograms[1].counts).toEqual(histogram(data.ood[0].predictiveEntropy, { lo: 0, hi: Math.log(10), bins: 30 }).counts);
  });

  it('regressionChartSvg draws the mean, a +-2 sigma band and the training points from its data', () => {
    const xs = [2, 0, 1, 3]; // drawn in x order
    const mean = [4, 0, 1, 9];
    const std = [0.5, 0.1, 0.2, 1];
    const svg = regressionChartSvg({ xs, mean, std, trainX: [0.5, 1.5], trainY: [0.3, 2.1] });
    expect(attributes(svg, 'g class="point"', 'data-x').map(Number)).toEqual([0, 1, 2, 3]);
    expect(attributes(svg, 'g class="point"', 'data-mean').map(Number)).toEqual([0, 1, 4, 9]);
    expect(attributes(svg, 'g class="point"', 'data-std').map(Number)).toEqual([0.1, 0.2, 0.5, 1]);
    expect(attributes(svg, 'circle class="train"', 'data-y').map(Number)).toEqual([0.3, 2.1]);
    expect(attributes(svg, 'polygon class="band"', 'points')[0].split(' ')).toHaveLength(8);
    expect(attributes(svg, 'polyline class="mean"', 'points')[0].split(' ')).toHaveLength(4);
    expect(() => regressionChartSvg({ xs, mean: [1], std, trainX: [], trainY: [] })).toThrow(/regressionChartSvg: argument 'mean' expected shape \[4\] \(one value per x\), got \[1\]/);
    expect(() => regressionChartSvg({ xs, mean, std, trainX: [1], trainY: [] })).toThrow(/argument 'trainY' expected shape \[1\]/);
    // It can go into a report as an extra section.
    const html = buildReport({ ...syntheticReport(), extraSections: [{ title: 'Regression', svg }] });
    expect(chart(html, 'regression')).toBe(svg);
  });

  it('helpers: round ticks, RGB images', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 2.302585, 6)).toEqual([0, 0.5, 1, 1.5, 2]);
    const rgb = Float32Array.from([1, 0, /* R */ 0, 1, /* G */ 0, 0.5 /* B */]);
    const png = decodePng(Buffer.from(imageDataUrl(rgb, [3, 1, 2]).split(',')[1], 'base64'));
    expect(Array.from(png.data)).toEqual([255, 0, 0, 0, 255, 128]);
    expect(() => imageDataUrl(new Float32Array(8), [2, 2, 2])).toThrow(/imageDataUrl: argument 'shape' expected shape \[1 or 3, H, W\]/);
  });
});

describe('bayesgpu eval (CLI)', () => {
  // A BBB LeNet with fixed (seeded) initial weights: the CLI plumbing does not need a trained model.
  async function checkpoint(): Promise<string> {
    const ctx = await context();
    const path = join(scratch, 'lenet.safetensors');
    const model = BBBLeNet(ctx, { seed: 5 });
    await saveModelFile(path, model);
    model.dispose();
    return path;
  }

  it('prints accuracy, NLL, Brier, ECE, MCE and OOD AUROC/AUPR; --json and --report carry the same numbers', async () => {
    const path = await checkpoint();
    // An OOD folder of three 28 x 28 PNG noise images.
    const dir = join(scratch, 'noise');
    mkdirSync(dir);
    const r = rng(1);
    for (let i = 0; i < 3; i++) writeFileSync(join(dir, `${i}.png`), encodePng({ width: 28, height: 28, data: Uint8Array.from({ length: 784 }, () => Math.floor(r() * 256)), channels: 1, depth: 8 }));
    const report = join(scratch, 'report.html');
    const common = ['eval', '--checkpoint', path, '--dataset', 'mnist', '--test-size', '24', '--samples', '3', '--batch-size', '24', '--ood-size', '12'];

    const json = await cli([...common, '--ood', dir, '--json', '--report', report]);
    expect(json.err).toBe('');
    expect(json.code).toBe(0);
    expect(json.out).toHaveLength(1);
    const o = JSON.parse(json.out[0]);
    for (const key of ['accuracy', 'accuracyMeanWeights', 'nll', 'brier', 'ece', 'mce']) expect(typeof o[key], key).toBe('number');
    expect([o.samples, o.images, typeof o.adapter]).toEqual([3, 24, 'string']);
    expect(o.ood).toHaveLength(1);
    expect(o.ood[0].file).toBe(dir);
    expect(o.ood[0].images).toBe(3);
    for (const key of ['aurocEntropy', 'aurocMutualInformation', 'aurocMaxProb', 'auprEntropy']) expect(o.ood[0][key], key).toBeGreaterThanOrEqual(0);

    // The report holds the run's numbers.
    const html = readFileSync(report, 'utf8');
    const j = embedded(html);
    expect(j.metrics).toMatchObject({ accuracy: o.accuracy, accuracyMeanWeights: o.accuracyMeanWeights, nll: o.nll, brier: o.brier, ece: o.ece, mce: o.mce, count: 24 });
    expect(j.ood[0]).toMatchObject({ aurocEntropy: o.ood[0].aurocEntropy, auprEntropy: o.ood[0].auprEntropy, count: 3 });
    expect(j.entropyHistograms[0].total).toBe(24);
    expect(j.examples).toHaveLength(2);
    expect(attributes(chart(html, 'reliability'), 'svg', 'data-ece')).toEqual([String(o.ece)]);
    expect(attributes(html, 'img', 'src')).toHaveLength(2);

    // Text output, with the default OOD set (Fashion-MNIST, installed here), announced as the default.
    const text = await cli(common);
    expect(text.code).toBe(0);
    const all = text.out.join('\n');
    expect(all).toMatch(/accuracy \(MC average of 3 samples\): \d+\.\d\d%/);
    expect(all).toMatch(/Brier score: +\d\.\d{4}/);
    expect(all).toMatch(/ECE \/ MCE \(15 bins\): +\d\.\d{4} \/ \d\.\d{4}/);
    expect(all).toContain('OOD set: fashion-mnist (test split), the default');
    expect(all).toMatch(/OOD fashion-mnist \(test split\) \(12 images\): AUROC entropy \d\.\d{4}, mutual information \d\.\d{4}, max prob \d\.\d{4}; AUPR entropy \d\.\d{4}/);
    // Same seed, same numbers as the JSON run.
    expect(all).toContain(`ECE / MCE (15 bins):                ${o.ece.toFixed(4)} / ${o.mce.toFixed(4)}`);

    const none = await cli([...common, '--ood', 'none', '--json']);
    expect(JSON.parse(none.out[0]).ood).toEqual([]);
  });

  it('bad options and OOD files fail with a message naming them, before evaluating', async () => {
    const path = join(scratch, 'lenet.safetensors');
    const wide = join(scratch, 'wide-idx3-ubyte');
    const idx = new Uint8Array(16 + 20 * 28);
    new DataView(idx.buffer).setUint32(0, 0x00000803, false);
    new DataView(idx.buffer).setUint32(4, 1, false);
    new DataView(idx.buffer).setUint32(8, 20, false);
    new DataView(idx.buffer).setUint32(12, 28, false);
    writeFileSync(wide, idx);
    const common = ['eval', '--checkpoint', path, '--test-size', '4', '--samples', '2'];
    const bad = await cli([...common, '--ood', wide]);
    expect(bad.code).toBe(2); // a bad input file
    expect(bad.err).toMatch(new RegExp(`OOD set '${wide}' has images of 20 x 28 pixels \\(height x width\\), which are not square`));
    expect((await cli([...common, '--samples', '0'])).err).toMatch(/option '--samples' expected an integer >= 1, got "0"/);
    expect((await cli([...common, '--method', 'probit'])).err).toMatch(/option '--method' expected softmax\|normalized, got "probit"/);
    expect((await cli([...common, '--ood', 'none', '--ood', wide])).err).toMatch(/'--ood none' turns OOD detection off and cannot be combined/);
    expect((await cli([...common, '--ood', join(scratch, 'nope.idx')])).err).toMatch(/OOD set '.*nope.idx' does not exist/);
  });
});
