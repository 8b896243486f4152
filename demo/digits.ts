/**
 * The Digits tab: a drawing pad whose digit is classified live by the shipped
 * BBB-LRT LeNet (or by one trained in this browser), with the predictive
 * distribution and its per-class epistemic and aleatoric variances; and the
 * "train in your browser" panel, which trains a fresh LeNet in the worker.
 */
import { Model, type CurveSeries, type Prediction, loadModel, trainingCurvesSvg, uncertaintyBarsSvg } from '../src/index.js';
import { DIGIT_NAMES } from './data.js';
import { short } from './format.js';
import { type DemoEnv, byId, frameThrottle, paintGrey, reportError, setStatus, startWorker } from './env.js';
import { drawingToInput, inkBox } from './preprocess.js';
import type { FromWorker, TrainDigitsJob } from './protocol.js';

/** Stroke width on the 280 px pad: about 2.2 px once a 200 px tall digit is scaled into MNIST's 20 px box. */
const STROKE = 22;
/** One random key for every prediction: the same drawing always gives the same numbers. */
const PREDICT_SEED = 1;

export function initDigits(env: DemoEnv): void {
  const pad = byId<HTMLCanvasElement>('pad');
  const preview = byId<HTMLCanvasElement>('pad-input');
  const summary = byId('digit-summary');
  const bars = byId('digit-bars');
  const samplesSelect = byId<HTMLSelectElement>('digit-samples');
  const shippedInfo = byId('shipped-info');
  const browserInfo = byId('browser-info');
  const radios = Array.from(document.querySelectorAll<HTMLInputElement>('input[name="digit-model"]'));
  const pen = pad.getContext('2d', { willReadFrequently: true })!;

  let shipped: Model | null = null;
  let browserTrained: Model | null = null;
  let updates = 0;

  const clearPad = () => {
    pen.fillStyle = '#000';
    pen.fillRect(0, 0, pad.width, pad.height);
  };
  clearPad();
  /** The models' input: 32 x 32 grey (MNIST's 28 x 28 resized, as the CLI prepares it). */
  const INPUT_SIZE = 32;
  paintGrey(preview, new Float32Array(INPUT_SIZE * INPUT_SIZE), INPUT_SIZE, INPUT_SIZE);

  const selectedModel = (): Model | null => (radios.find((r) => r.checked)?.value === 'browser' ? browserTrained : shipped);

  const show = (p: Prediction, modelName: string) => {
    let best = 0;
    for (let c = 1; c < 10; c++) if (p.mean[c] > p.mean[best]) best = c;
    updates++;
    summary.classList.remove('error');
    summary.dataset.updates = String(updates);
    summary.dataset.prediction = String(best);
    summary.dataset.probability = String(p.mean[best]);
    summary.dataset.entropy = String(p.predictiveEntropy[0]);
    summary.dataset.mutualInformation = String(p.mutualInformation[0]);
    summary.innerHTML = `<span class="digit">${best}</span>p̄ = ${short(p.mean[best])}` +
      `<div class="numbers-line">predictive entropy H[p̄] = ${short(p.predictiveEntropy[0])} nats · expected entropy ${short(p.expectedEntropy[0])} · ` +
      `mutual information ${short(p.mutualInformation[0], 4)} nats · T = ${p.samples} samples · ${modelName}</div>`;
    bars.innerHTML = uncertaintyBarsSvg(p, { classNames: DIGIT_NAMES, width: 760 });
  };

  // Live prediction: at most one in flight; a drawing that changed meanwhile is predicted as soon as it ends.
  let wanted = false;
  let running = false;
  const predictNow = async () => {
    const model = selectedModel();
    // The page finds the ink (for the blank pad and the part of the pad to take); the library
    // reads the canvas itself and does the resizing and centring on the GPU (demo/preprocess.ts).
    const box = inkBox(pen.getImageData(0, 0, pad.width, pad.height).data, pad.width, pad.height);
    if (!box) {
      paintGrey(preview, new Float32Array(INPUT_SIZE * INPUT_SIZE), INPUT_SIZE, INPUT_SIZE);
      summary.textContent = 'Draw a digit on the pad.';
      bars.innerHTML = '';
      return;
    }
    if (!model) return;
    const samples = Number(samplesSelect.value);
    const p = await env.queue.run(async () => {
      const x = await drawingToInput(model, pad, box);
      try {
        paintGrey(preview, await x.read(), x.shape[3], x.shape[2]);
        return await model.predict(x, { samples, seed: PREDICT_SEED });
      } finally {
        x.dispose();
      }
    });
    show(p, model === browserTrained ? 'model trained in this browser' : 'pretrained model');
  };
  const requestPrediction = () => {
    wanted = true;
    if (running) return;
    running = true;
    summary.dataset.busy = 'true';
    void (async () => {
      try {
        while (wanted) {
          wanted = false;
          await predictNow();
        }
      } catch (e) {
        reportError(summary, 'prediction', e);
      } finally {
        running = false;
        summary.dataset.busy = 'false';
      }
    })();
  };

  // Pointer events cover mouse, pen and touch; the pad's CSS sets touch-action: none so a finger draws instead of scrolling.
  let last: [number, number] | null = null;
  const at = (ev: PointerEvent): [number, number] => {
    const r = pad.getBoundingClientRect();
    return [((ev.clientX - r.left) / r.width) * pad.width, ((ev.clientY - r.top) / r.height) * pad.height];
  };
  const stroke = (from: [number, number], to: [number, number]) => {
    pen.strokeStyle = '#fff';
    pen.lineWidth = STROKE;
    pen.lineCap = 'round';
    pen.lineJoin = 'round';
    pen.beginPath();
    pen.moveTo(from[0], from[1]);
    pen.lineTo(to[0], to[1]);
    pen.stroke();
  };
  pad.addEventListener('pointerdown', (ev) => {
    ev.preventDefault();
    pad.setPointerCapture(ev.pointerId);
    last = at(ev);
    stroke(last, last);
    requestPrediction();
  });
  pad.addEventListener('pointermove', (ev) => {
    if (!last) return;
    const p = at(ev);
    stroke(last, p);
    last = p;
    requestPrediction();
  });
  const end = () => {
    last = null;
  };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);
  byId('pad-clear').addEventListener('click', () => {
    clearPad();
    requestPrediction();
  });
  samplesSelect.addEventListener('change', requestPrediction);
  for (const r of radios) r.addEventListener('change', requestPrediction);

  env.shippedModel().then(
    (m) => {
      shipped = m.model;
      shippedInfo.textContent = `(${m.description})`;
      requestPrediction();
    },
    (e) => reportError(shippedInfo, 'loading the pretrained model', e),
  );

  initTraining(env, (model, note) => {
    browserTrained?.dispose();
    browserTrained = model;
    const radio = radios.find((r) => r.value === 'browser')!;
    radio.disabled = false;
    radio.checked = true;
    browserInfo.textContent = `(${note})`;
    requestPrediction();
  });
}

/** The "train in your browser" panel: the worker trains, this draws the curves and hands the model over. */
function initTraining(env: DemoEnv, onModel: (model: Model, note: string) => void): void {
  const start = byId<HTMLButtonElement>('train-start');
  const stop = byId<HTMLButtonElement>('train-stop');
  const epochs = byId<HTMLSelectElement>('train-epochs');
  const status = byId('train-status');
  const lossChart = byId('train-loss');
  const accuracyChart = byId('train-accuracy');
  let worker: Worker | null = null;
  let adapter = '';
  let steps: { step: number; nll: number; accuracy: number; kl: number; epoch: number; imagesPerSecond: number }[] = [];
  let heldOut: [number, number][] = [];

  /** Exponential moving average of a noisy per-batch series (the curves would be unreadable raw). */
  const smooth = (values: number[], alpha = 0.15): number[] => {
    let m = values[0];
    return values.map((v) => (m = m + alpha * (v - m)));
  };
  const draw = frameThrottle(() => {
    const x = steps.map((s) => s.step);
    const nll = smooth(steps.map((s) => s.nll));
    const acc = smooth(steps.map((s) => s.accuracy));
    const lossSeries: CurveSeries[] = [{ name: 'train NLL per image (smoothed)', points: x.map((s, i) => [s, nll[i]]) }];
    const accSeries: CurveSeries[] = [
      { name: 'train batch (smoothed)', points: x.map((s, i) => [s, acc[i]]) },
      { name: 'held-out', points: heldOut, markers: true },
    ];
    lossChart.innerHTML = trainingCurvesSvg(lossSeries, { title: 'Loss', xLabel: 'step', yLabel: 'nats' });
    accuracyChart.innerHTML = trainingCurvesSvg(accSeries, { title: 'Accuracy', xLabel: 'step', yLabel: 'fraction correct', yDomain: [0, 1] });
  });

  const finish = () => {
    start.disabled = false;
    stop.disabled = true;
  };

  const onMessage = async (m: FromWorker) => {
    switch (m.type) {
      case 'adapter':
        adapter = m.name;
        break;
      case 'status':
        setStatus(status, `${m.text}${adapter ? ` (worker adapter: ${adapter})` : ''}`);
        break;
      case 'digits-step': {
        steps.push(m);
        const lastEval = heldOut.at(-1);
        status.dataset.step = String(m.step);
        status.dataset.nll = String(m.nll);
        setStatus(status, `epoch ${m.epoch}, step ${m.step}: NLL ${m.nll.toFixed(3)}, batch accuracy ${(m.accuracy * 100).toFixed(0)}%, KL ${m.kl.toFixed(0)} nats` +
          `${lastEval ? `, held-out ${(lastEval[1] * 100).toFixed(1)}%` : ''} · ${m.imagesPerSecond.toFixed(0)} images/s`);
        draw();
        break;
      }
      case 'digits-eval':
        heldOut.push([m.step, m.accuracy]);
        status.dataset.heldOut = String(m.accuracy);
        draw();
        break;
      case 'digits-done': {
        const model = loadModel(env.ctx, m.checkpoint);
        if (!(model instanceof Model)) throw new Error('the training worker sent another network than a LeNet');
        const acc = heldOut.at(-1)?.[1];
        onModel(model, `${m.steps} steps${acc === undefined ? '' : `, held-out ${(acc * 100).toFixed(1)}%`}`);
        setStatus(status, `${m.stopped ? 'stopped' : 'done'} after ${m.steps} steps${acc === undefined ? '' : `: held-out accuracy ${(acc * 100).toFixed(1)}%`}. The pad now uses this model.`);
        status.dataset.done = String(m.steps);
        finish();
        break;
      }
      case 'error':
        reportError(status, 'training', new Error(m.message));
        finish();
        break;
      default:
        break;
    }
  };

  start.addEventListener('click', () => {
    if (!worker) {
      worker = startWorker('digits-training');
      worker.onmessage = (ev: MessageEvent<FromWorker>) => void onMessage(ev.data).catch((e) => reportError(status, 'training', e));
      worker.onerror = (ev) => {
        reportError(status, 'the training worker', new Error(ev.message || 'it failed to start'));
        finish();
      };
    }
    steps = [];
    heldOut = [];
    delete status.dataset.done;
    start.disabled = true;
    stop.disabled = false;
    draw();
    // beta: the CLI's 0.1 for 48,000 images scaled to 2,000 (the KL term is per data set, the NLL term per image).
    const job: TrainDigitsJob = { type: 'train-digits', epochs: Number(epochs.value), batchSize: 32, lr: 2e-3, beta: 0.005, seed: 1 + Math.floor(Math.random() * 1e6), evalImages: 300, evalEvery: 20 };
    worker.postMessage(job);
  });
  stop.addEventListener('click', () => {
    worker?.postMessage({ type: 'stop' });
    stop.disabled = true;
    setStatus(status, 'stopping after this step…');
  });
}
