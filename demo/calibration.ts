/**
 * The Calibration tab: the shipped model's reliability diagram on the shipped
 * MNIST test images (library: model.predict, classificationMetrics,
 * reliabilityDiagramSvg), redrawn after every batch so that the diagram fills
 * in while a software adapter works through the images.
 */
import { classificationMetrics, reliabilityDiagramSvg } from '../src/index.js';
import { escapeHtml } from '../src/index.js';
import { short } from './format.js';
import { firstImages } from './data.js';
import { type DemoEnv, byId, exclusiveRun, setStatus } from './env.js';

const BATCH = 100;
const SEED = 5;

export function initCalibration(env: DemoEnv): { run: () => void } {
  const runButton = byId<HTMLButtonElement>('cal-run');
  const samplesSelect = byId<HTMLSelectElement>('cal-samples');
  const countSelect = byId<HTMLSelectElement>('cal-count');
  const status = byId('cal-status');
  const chart = byId('cal-chart');
  const table = byId<HTMLTableElement>('cal-metrics');

  const run = exclusiveRun(runButton, status, 'the calibration run', async () => {
    const samples = Number(samplesSelect.value);
    setStatus(status, 'loading the model and the test images…');
    const [{ model, description }, test] = await Promise.all([env.shippedModel(), env.dataSet('mnist-test')]);
    const data = firstImages(test, Number(countSelect.value));
    const classes = data.classes;
    const per = data.shape[0] * data.shape[1] * data.shape[2];
    const mean = new Float32Array(data.count * classes);
    const started = performance.now();
    for (let from = 0; from < data.count; from += BATCH) {
      const to = Math.min(from + BATCH, data.count);
      const part = { ...data, x: data.x.subarray(from * per, to * per), labels: data.labels.subarray(from, to), count: to - from };
      // step = first index: the same random keys as one model.predict over the whole set.
      const p = await env.queue.run(() => model.predict(part, { samples, seed: SEED, step: from, batchSize: BATCH }));
      mean.set(p.mean, from * classes);
      const m = classificationMetrics(mean.subarray(0, to * classes), data.labels.subarray(0, to), classes);
      chart.innerHTML = reliabilityDiagramSvg(m.reliability, { width: 460, height: 400 });
      chart.dataset.images = String(to);
      chart.dataset.ece = String(m.ece);
      const rows: [string, string, string][] = [
        ['images', String(to), 'images'],
        ['accuracy', `${(m.accuracy * 100).toFixed(1)}%`, 'accuracy'],
        ['NLL (nats)', short(m.nll), 'nll'],
        ['Brier score', short(m.brier), 'brier'],
        ['ECE (15 bins)', short(m.ece), 'ece'],
        ['MCE (15 bins)', short(m.mce), 'mce'],
        ['samples T', String(samples), 'samples'],
      ];
      table.innerHTML = `<tbody>${rows.map(([k, v, key]) => `<tr><td>${escapeHtml(k)}</td><td data-metric="${key}">${escapeHtml(v)}</td></tr>`).join('')}` +
        `<tr><td colspan="2" class="meta">${escapeHtml(description)}</td></tr></tbody>`;
      setStatus(status, `${to} / ${data.count} images (T = ${samples})…`);
    }
    setStatus(status, `${data.count} images, T = ${samples} samples each, in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
    status.dataset.done = String(data.count);
  });
  return { run };
}
