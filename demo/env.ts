/**
 * What the tabs share: the page's WebGPU context, a queue that runs GPU jobs
 * one after another, the shipped model and data sets (each loaded once, when
 * a tab first needs it), and small DOM helpers.
 */
import { type Context, type FloatDataset, Model, loadModel, modelMetadata } from '../src/index.js';
import { type DataSetName, MODEL_URL, fetchBytes, loadDataSet } from './data.js';

/**
 * Runs async jobs one at a time, in order. The tabs' GPU work goes through it
 * in small pieces (one prediction, one batch of 100 images), so a live digit
 * prediction waits for at most one piece of a long evaluation.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.tail.then(job);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export interface ShippedModel {
  model: Model;
  /** One line for the page: architecture, layer type, activation, how it was trained. */
  description: string;
}

export class DemoEnv {
  readonly queue = new SerialQueue();
  private shipped?: Promise<ShippedModel>;
  private readonly sets = new Map<DataSetName, Promise<FloatDataset>>();

  constructor(readonly ctx: Context) {}

  /** The pretrained LeNet of demo/model/ (trained by the CLI). */
  shippedModel(): Promise<ShippedModel> {
    this.shipped ??= fetchBytes(MODEL_URL).then((bytes) => {
      const model = loadModel(this.ctx, bytes);
      const metadata = modelMetadata(bytes);
      if (!(model instanceof Model)) throw new Error(`${MODEL_URL}: expected a named model (LeNet), got another network`);
      const c = model.config;
      const trained = [metadata.dataset, metadata.epochs && `${metadata.epochs} epoch${metadata.epochs === '1' ? '' : 's'}`].filter(Boolean).join(', ');
      // A temperature fitted by `bayesgpu eval --calibrate --out` comes with the file and predict applies it.
      const tempered = model.temperature !== 1 ? `, temperature ${model.temperature.toFixed(3)} (fitted on its validation split)` : '';
      return { model, description: `${c.model} ${c.bayesian ? `BBB-${c.layerType.toUpperCase()}` : '(frequentist)'}, ${c.activation}${trained ? `; trained by the CLI on ${trained}` : ''}${tempered}` };
    });
    return this.shipped;
  }

  dataSet(name: DataSetName): Promise<FloatDataset> {
    let set = this.sets.get(name);
    if (!set) this.sets.set(name, (set = loadDataSet(name)));
    return set;
  }
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo: element #${id} is missing from index.html`);
  return el as T;
}

/** Shows an error in a status element and on the console (the headless test fails on console errors). */
export function reportError(status: HTMLElement, where: string, e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  status.textContent = `${where} failed: ${message}`;
  status.classList.add('error');
  console.error(`demo: ${where} failed:`, e);
}

/**
 * Wires a Run button to a job that runs one at a time: the button is disabled while it runs and
 * a failure is shown in the status line. Returns a function that starts it as a click would.
 */
export function exclusiveRun(button: HTMLButtonElement, status: HTMLElement, what: string, job: () => Promise<void>): () => void {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    button.disabled = true;
    try {
      await job();
    } catch (e) {
      reportError(status, what, e);
    } finally {
      running = false;
      button.disabled = false;
    }
  };
  button.addEventListener('click', () => void run());
  return () => void run();
}

export function setStatus(status: HTMLElement, text: string): void {
  status.textContent = text;
  status.classList.remove('error');
}

/** Paints a grey [H, W] image in [0, 1] (ink white on black, as MNIST) into a canvas of the same size. */
export function paintGrey(canvas: HTMLCanvasElement, grey: ArrayLike<number>, width: number, height: number): void {
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext('2d')!;
  const img = g.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const v = Math.round(Math.min(Math.max(grey[i], 0), 1) * 255);
    img.data[4 * i] = v;
    img.data[4 * i + 1] = v;
    img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  g.putImageData(img, 0, 0);
}

/** Starts the training worker (demo/build/worker.js, next to this bundle). */
export function startWorker(name: string): Worker {
  return new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name });
}

/** Redraws at most once per animation frame, however often `request` is called. */
export function frameThrottle(draw: () => void): () => void {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      draw();
    });
  };
}
