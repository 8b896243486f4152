/**
 * The Regression tab: the worker fits the seed tutorial's noisy sine and sends
 * the predictive distribution on a grid every few epochs; this redraws the
 * mean with its ±2σ bands.
 */
import type { RegressionHead } from '../src/index.js';
import { regressionChartSvg } from '../src/index.js';
import { type DemoEnv, byId, frameThrottle, reportError, setStatus, startWorker } from './env.js';
import type { FromWorker, RegressionFrame, TrainRegressionJob } from './protocol.js';

export function initRegression(_env: DemoEnv): { run: () => void } {
  const start = byId<HTMLButtonElement>('reg-start');
  const stop = byId<HTMLButtonElement>('reg-stop');
  const head = byId<HTMLSelectElement>('reg-head');
  const epochs = byId<HTMLSelectElement>('reg-epochs');
  const status = byId('reg-status');
  const chart = byId('reg-chart');
  let worker: Worker | null = null;
  let adapter = '';
  let train: { x: Float32Array; y: Float32Array } | null = null;
  let frame: RegressionFrame | null = null;
  let frames = 0;

  const draw = frameThrottle(() => {
    if (!frame || !train) return;
    const f = frame;
    const title = f.epoch === 0 ? 'Before training: the prior predictive' : `Epoch ${f.epoch} / ${f.epochs}: predictive mean ± 2σ`;
    // Fixed axes keep the picture still while training redraws it.
    chart.innerHTML = regressionChartSvg(
      { ...f, trainX: train.x, trainY: train.y, truth: { name: 'sin(x)', values: f.xs.map(Math.sin) } },
      { title, xDomain: [-7, 7], yDomain: [-3, 3], width: 900, height: 420 },
    );
    chart.dataset.frames = String(frames);
    chart.dataset.epoch = String(f.epoch);
    // The band's half-width 2σ at x = 0 (inside the data) and x = ±6.5 (outside it), for the test and the curious.
    const sd = (x: number) => {
      const i = Math.round((x - f.xs[0]) / (f.xs[1] - f.xs[0]));
      return Math.sqrt(f.epistemicVar[i] + f.aleatoricVar[i]);
    };
    chart.dataset.stdInside = String(sd(0));
    chart.dataset.stdOutside = String((sd(-6.5) + sd(6.5)) / 2);
  });

  const finish = () => {
    start.disabled = false;
    stop.disabled = true;
  };

  const onMessage = (m: FromWorker) => {
    switch (m.type) {
      case 'adapter':
        adapter = m.name;
        break;
      case 'status':
        setStatus(status, `${m.text}${adapter ? ` (worker adapter: ${adapter})` : ''}`);
        break;
      case 'regression-data':
        train = { x: m.x, y: m.y };
        break;
      case 'regression-frame':
        frame = m;
        frames++;
        if (m.epoch > 0) setStatus(status, `epoch ${m.epoch} / ${m.epochs}: loss ${m.loss.toFixed(1)}, NLL per point ${m.nll.toFixed(3)}, KL ${m.kl.toFixed(0)} nats`);
        draw();
        break;
      case 'regression-done':
        setStatus(status, `${m.stopped ? 'stopped' : 'done'} at epoch ${frame?.epoch ?? 0} after ${m.seconds.toFixed(1)} s${adapter ? ` on ${adapter}` : ''}.`);
        status.dataset.done = String(frame?.epoch ?? 0);
        finish();
        break;
      case 'error':
        reportError(status, 'regression training', new Error(m.message));
        finish();
        break;
      default:
        break;
    }
  };

  const run = () => {
    if (!worker) {
      worker = startWorker('regression-training');
      worker.onmessage = (ev: MessageEvent<FromWorker>) => onMessage(ev.data);
      worker.onerror = (ev) => {
        reportError(status, 'the training worker', new Error(ev.message || 'it failed to start'));
        finish();
      };
    }
    frames = 0;
    delete status.dataset.done;
    start.disabled = true;
    stop.disabled = false;
    // The acceptance test's settings (examples/regression.ts): 512 points, batches of 256, Adam lr 0.03.
    const job: TrainRegressionJob = { type: 'train-regression', head: head.value as RegressionHead, epochs: Number(epochs.value), points: 512, noise: 0.1, seed: 1, predictSamples: 40, redrawEvery: 2 };
    worker.postMessage(job);
  };
  start.addEventListener('click', run);
  stop.addEventListener('click', () => {
    worker?.postMessage({ type: 'stop' });
    stop.disabled = true;
  });
  return { run };
}
