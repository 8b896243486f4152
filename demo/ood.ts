/**
 * The Out-of-distribution tab: the shipped model's predictive entropy and
 * mutual information on MNIST digits (in distribution) against Fashion-MNIST
 * clothes, a blank canvas and uniform noise, with AUROC of each score
 * (oodDetection) and a gallery of examples.
 */
import { type FloatDataset, type Model, type Prediction, Rng, oodDetection } from '../src/index.js';
import { CHART_COLORS, entropyScatterSvg, escapeHtml, uncertaintyBarsSvg } from '../src/index.js';
import { DIGIT_NAMES, FASHION_NAMES, firstImages } from './data.js';
import { short } from './format.js';
import { type DemoEnv, byId, exclusiveRun, paintGrey, setStatus } from './env.js';

/** Images per set: enough for stable means and AUROC, few enough for a software adapter (about 200 x T forward passes). */
const PER_SET = 100;
const NOISE_IMAGES = 20;
const GALLERY_PER_SET = 6;
const BATCH = 50;
const SEED = 3;

/** Per-image results of one set (N images, C classes), joined from its batches. */
interface SetPrediction {
  count: number;
  /** [N, C] each. */
  mean: Float32Array;
  epistemic: Float32Array;
  aleatoric: Float32Array;
  /** [N] each. */
  predictiveEntropy: Float32Array;
  mutualInformation: Float32Array;
  maxProb: Float32Array;
  predicted: Uint32Array;
}

interface OodSet {
  name: string;
  color: string;
  data: FloatDataset;
  /** Names of the set's own labels (Fashion-MNIST), shown in the gallery. */
  labelNames?: readonly string[];
  prediction?: SetPrediction;
}

/** `count` images of uniform noise in [0, 1], from a seeded generator (the same images on every run). */
function noiseImages(count: number, shape: readonly number[]): FloatDataset {
  const rng = new Rng(12345);
  const x = Float32Array.from({ length: count * shape[0] * shape[1] * shape[2] }, () => rng.nextFloat());
  return { x, labels: new Uint8Array(count), count, shape, classes: 10 };
}

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / Math.max(a.length, 1);

export function initOod(env: DemoEnv): { run: () => void } {
  const runButton = byId<HTMLButtonElement>('ood-run');
  const samplesSelect = byId<HTMLSelectElement>('ood-samples');
  const status = byId('ood-status');
  const table = byId<HTMLTableElement>('ood-table');
  const scatter = byId('ood-scatter');
  const gallery = byId('ood-gallery');
  const detail = byId('ood-detail');

  const render = (sets: OodSet[], samples: number) => {
    const reference = sets[0].prediction!;
    const rows = sets.filter((s) => s.prediction).map((s, k) => {
      const p = s.prediction!;
      const detection = k === 0 || p.count < 2 ? null : oodDetection(reference, p);
      return `<tr data-set="${escapeHtml(s.name)}" data-entropy="${mean(p.predictiveEntropy)}" data-mi="${mean(p.mutualInformation)}">` +
        `<td><span class="swatch" style="background:${s.color}"></span>${escapeHtml(s.name)}</td><td>${p.count}</td>` +
        `<td>${short(mean(p.predictiveEntropy))}</td><td>${short(mean(p.mutualInformation), 4)}</td><td>${short(mean(p.maxProb))}</td>` +
        `<td>${detection ? short(detection.aurocEntropy) : k === 0 ? '(reference)' : '–'}</td><td>${detection ? short(detection.aurocMutualInformation) : ''}</td></tr>`;
    });
    table.innerHTML = '<thead><tr><th>set</th><th>images</th><th>mean H[p̄]</th><th>mean MI</th><th>mean max p̄</th><th>AUROC H</th><th>AUROC MI</th></tr></thead>' +
      `<tbody>${rows.join('')}</tbody>`;
    const done = sets.filter((s) => s.prediction);
    scatter.innerHTML = entropyScatterSvg(done.map((s) => ({ name: s.name, ...s.prediction! })), {
      title: `One dot per image (T = ${samples})`, xLabel: 'predictive entropy H[p̄] (nats; at most log 10 = 2.30)', width: 520,
      maxEntropy: Math.log(10), colors: done.map((s) => s.color),
    });
    // The gallery: the first few images of each set, each with its prediction; a click shows its per-class bars.
    gallery.innerHTML = '';
    for (const s of done) {
      const p = s.prediction!;
      const per = s.data.shape[1] * s.data.shape[2];
      for (let i = 0; i < Math.min(GALLERY_PER_SET, p.count); i++) {
        const figure = document.createElement('figure');
        const canvas = document.createElement('canvas');
        paintGrey(canvas, s.data.x.subarray(i * per, (i + 1) * per), s.data.shape[2], s.data.shape[1]);
        const truth = s.labelNames ? s.labelNames[s.data.labels[i]] : null;
        figure.innerHTML = `<figcaption><span class="set-name">${escapeHtml(truth ?? s.name)}</span><br>→ ${p.predicted[i]} (${short(p.mean[i * 10 + p.predicted[i]], 2)})<br>H ${short(p.predictiveEntropy[i], 2)}<br>MI ${short(p.mutualInformation[i], 3)}</figcaption>`;
        figure.prepend(canvas);
        figure.addEventListener('click', () => {
          gallery.querySelectorAll('figure.selected').forEach((f) => f.classList.remove('selected'));
          figure.classList.add('selected');
          showDetail(s, i, truth);
        });
        gallery.append(figure);
      }
    }
  };

  /** The per-class bars of image i, from the moments its batch already computed (no new GPU work). */
  const showDetail = (s: OodSet, i: number, truth: string | null) => {
    const p = s.prediction!;
    const C = 10;
    const row = (a: Float32Array) => a.subarray(i * C, (i + 1) * C);
    detail.innerHTML = uncertaintyBarsSvg({ mean: row(p.mean), epistemic: row(p.epistemic), aleatoric: row(p.aleatoric) }, {
      classNames: DIGIT_NAMES,
      title: `${s.name}${truth ? ` (${truth})` : ''}, image ${i + 1}: H[p̄] = ${short(p.predictiveEntropy[i])}, MI = ${short(p.mutualInformation[i], 4)}`,
    });
  };

  const run = exclusiveRun(runButton, status, 'the out-of-distribution run', async () => {
    const samples = Number(samplesSelect.value);
    setStatus(status, 'loading the model and the data sets…');
    const [{ model }, mnist, fashion] = await Promise.all([env.shippedModel(), env.dataSet('mnist-test'), env.dataSet('fashion-test')]);
    const shape = mnist.shape;
    const sets: OodSet[] = [
      { name: 'MNIST digits', color: CHART_COLORS[0], data: firstImages(mnist, PER_SET), labelNames: DIGIT_NAMES },
      { name: 'Fashion-MNIST', color: CHART_COLORS[1], data: firstImages(fashion, PER_SET), labelNames: FASHION_NAMES },
      { name: 'blank canvas', color: CHART_COLORS[2], data: { x: new Float32Array(shape[0] * shape[1] * shape[2]), labels: new Uint8Array(1), count: 1, shape, classes: 10 } },
      { name: 'uniform noise', color: CHART_COLORS[3], data: noiseImages(NOISE_IMAGES, shape) },
    ];
    const total = sets.reduce((n, s) => n + s.data.count, 0);
    let done = 0;
    const started = performance.now();
    for (const s of sets) {
      // Batches of BATCH images, each its own queue job, so the pad's live predictions can cut in.
      const parts: Prediction[] = [];
      for (let from = 0; from < s.data.count; from += BATCH) {
        const n = Math.min(BATCH, s.data.count - from);
        parts.push(await env.queue.run(() => predictBatch(model, s.data, from, n, samples)));
        done += n;
        setStatus(status, `${done} / ${total} images (T = ${samples})…`);
      }
      s.prediction = join(parts);
      render(sets, samples);
    }
    setStatus(status, `${total} images, T = ${samples} samples each, in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
    status.dataset.done = String(total);
  });
  return { run };
}

/** The predictive distribution of images [from, from + n) of `data`; batch keys (SEED, from) as one model.predict over the set uses them. */
async function predictBatch(model: Model, data: FloatDataset, from: number, n: number, samples: number): Promise<Prediction> {
  const per = data.shape[0] * data.shape[1] * data.shape[2];
  return model.predict({ data: data.x.subarray(from * per, (from + n) * per), shape: [n, ...data.shape] }, { samples, seed: SEED, step: from });
}

/** Joins the batch predictions of one set, in order. */
function join(parts: Prediction[]): SetPrediction {
  const cat = (pick: (p: Prediction) => Float32Array) => {
    const out = new Float32Array(parts.reduce((n, p) => n + pick(p).length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(pick(p), at);
      at += pick(p).length;
    }
    return out;
  };
  const C = parts[0].classes;
  const mean = cat((p) => p.mean);
  const count = mean.length / C;
  const predicted = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    for (let c = 1; c < C; c++) if (mean[i * C + c] > mean[i * C + predicted[i]]) predicted[i] = c;
  }
  return {
    count, mean, predicted,
    epistemic: cat((p) => p.epistemic),
    aleatoric: cat((p) => p.aleatoric),
    predictiveEntropy: cat((p) => p.predictiveEntropy),
    mutualInformation: cat((p) => p.mutualInformation),
    maxProb: cat((p) => p.maxProb),
  };
}
