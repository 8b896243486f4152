/**
 * `bayesgpu predict`: a saved model's predictive distribution for the user's own image files, with
 * its uncertainty. The files are decoded on the CPU first (images.ts: PNG, JPEG, a folder of them),
 * so a bad file is reported before the GPU starts; then the model is loaded (loadModel) and the
 * images go through the library's image path (src/nn/image_input.ts: resize, grey/RGB, [0, 1],
 * invert, centring, normalization, from the model's saved preprocessing with the flags given here
 * overriding it) into model.predict.
 *
 * Per image: the predicted class (argmax of the predictive mean p_bar = mean_t p_t), its
 * probability, the predictive entropy H[p_bar], the mutual information (BALD: H[p_bar] - mean_t
 * H[p_t], Houlsby et al. 2011; Gal 2016, eq. 3.19), and the epistemic and aleatoric variance of the
 * predicted class (Kwon et al. 2020, eq. 4: mean_t (p_t - p_bar)^2 and mean_t (p_t - p_t^2)).
 */
import { loadModel } from '../io/checkpoint.js';
import { readFile } from '../io/node_files.js';
import type { ImageOptions } from '../nn/image_input.js';
import type { Prediction } from '../nn/predict.js';
import type { Sequential } from '../nn/sequential.js';
import { type CommandEnv, fail, forOption } from './common.js';
import { ImageFiles, colourPixels, expandImagePaths } from '../io/image_files.js';
import { command, integer, oneOf, parseCommand, path } from './options.js';

export const PREDICT = command({
  name: 'predict',
  summary: 'predict the class of image files (PNG, JPEG) with a saved model, with its uncertainty',
  usage: '--checkpoint FILE [options] IMAGE... | FOLDER',
  about: [
    "Classifies PNG and JPEG files with a model saved by bayesgpu train (or saveModel). Each image is prepared as the model's saved preprocessing says (for bayesgpu train's models: resized to the input size, values in [0, 1]); the flags below override it.",
    'Prints, per image, the predicted class (its name when the model has class names), its predictive probability, the predictive entropy and the mutual information (nats), and the epistemic and aleatoric variance of the predicted class: a table, or one JSON object per line with --json.',
  ],
  positionals: { name: 'IMAGE... | FOLDER', min: 1, description: 'PNG or JPEG files, and folders standing for their .png, .jpg and .jpeg files (sorted by name)' },
  options: {
    checkpoint: { type: path(), description: 'the model (.safetensors, from bayesgpu train or saveModel; required)' },
    samples: { type: integer(1, 'T'), default: 25, description: 'Monte Carlo samples per image (a frequentist model runs once)' },
    'batch-size': { type: integer(1), default: 64, description: 'images per GPU batch' },
    json: { type: 'flag', description: 'print one JSON object per image (JSON lines) instead of the table' },
    grey: { type: 'flag', description: 'convert colour images to grey (BT.601 luma) for a 1-channel model; without it a colour image for a grey model is an error' },
    invert: { type: 'flag', description: 'use 1 - v: dark strokes on a light page become light strokes on black, as in MNIST' },
    'center-by-mass': { type: 'flag', description: "shift each image so that the centre of mass of its grey values is at the centre, as MNIST's digits were prepared" },
    resize: { type: oneOf(['area', 'bilinear', 'nearest'] as const), defaultText: "the model's (area for bayesgpu train's models)", description: 'the resampling filter of the resize to the model input size' },
    seed: { type: integer(0), default: 1, description: 'the seed of the Monte Carlo noise' },
  },
  examples: [
    '--checkpoint model.safetensors digit.png',
    '--checkpoint model.safetensors --invert --grey --samples 50 photos/',
    '--checkpoint model.safetensors --json scans/*.jpg > predictions.jsonl',
  ],
});

/** One image's figures, as --json prints them. */
export interface ImagePrediction {
  file: string;
  /** The predicted class index, and its name when the model has class names. */
  class: number;
  className: string | null;
  probability: number;
  predictiveEntropy: number;
  mutualInformation: number;
  /** Of the predicted class. */
  epistemic: number;
  aleatoric: number;
  /** The predictive mean of every class. */
  probabilities: number[];
}

function rowsOf(files: readonly string[], p: Prediction, classNames: readonly string[] | undefined): ImagePrediction[] {
  return files.map((file, i) => {
    const k = p.predicted[i];
    const at = i * p.classes + k;
    return {
      file,
      class: k,
      className: classNames?.[k] ?? null,
      probability: p.mean[at],
      predictiveEntropy: p.predictiveEntropy[i],
      mutualInformation: p.mutualInformation[i],
      epistemic: p.epistemic[at],
      aleatoric: p.aleatoric[at],
      probabilities: [...p.mean.subarray(i * p.classes, (i + 1) * p.classes)],
    };
  });
}

/** The readable table: one row per image, the columns padded to their widest entry. */
function table(rows: readonly ImagePrediction[]): string[] {
  const head = ['file', 'class', 'p', 'entropy', 'MI', 'epistemic', 'aleatoric'];
  const cells = rows.map((r) => [
    r.file,
    r.className !== null ? r.className : String(r.class),
    r.probability.toFixed(4), r.predictiveEntropy.toFixed(4), r.mutualInformation.toFixed(4), r.epistemic.toExponential(3), r.aleatoric.toExponential(3),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c].length)));
  // The file and the class read left-aligned, the figures right-aligned.
  const line = (row: string[]) => row.map((v, c) => (c < 2 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ').trimEnd();
  return [line(head), ...cells.map(line)];
}

export async function predictCommand(argv: string[], env: CommandEnv): Promise<void> {
  const { values, positionals } = parseCommand(PREDICT, argv);
  const checkpoint = values.checkpoint;
  if (checkpoint === undefined) fail("option '--checkpoint' expected a .safetensors file (it is required), got none");
  // Every file is found and decoded before the GPU starts, so a bad one costs nothing.
  const files = await ImageFiles.decode(await expandImagePaths(positionals));
  const bytes = await forOption('checkpoint', 'a model saved by bayesgpu train or saveModel (.safetensors)', checkpoint, () => readFile(checkpoint));
  const ctx = await env.context();
  const model: Sequential = await forOption('checkpoint', 'a model saved by bayesgpu train or saveModel (.safetensors)', checkpoint, async () => loadModel(ctx, bytes));
  try {
    if (model.task !== 'classification') fail(`option '--checkpoint' expected a classifier, got a ${model.task} model: ${checkpoint}`);
    const image: ImageOptions = {};
    if (values.grey) image.grey = true;
    if (values.invert) image.invert = true;
    if (values['center-by-mass']) image.centerByMass = true;
    if (values.resize !== undefined) image.resize = values.resize;
    const classNames = model.modelOptions.classNames;
    const batchSize = values['batch-size'];
    const rows: ImagePrediction[] = [];
    // One predict call per batch of files, so that only a batch of decoded images is held at a time
    // (ImageFiles keeps what fits its budget); with step = the batch's first index and the same
    // batchSize, every image gets the noise it would get in one predict call over all the files.
    for (let from = 0; from < files.count; from += batchSize) {
      const to = Math.min(from + batchSize, files.count);
      const images = await files.slice(from, to);
      if (model.inputShape[0] === 1 && !values.grey) {
        // The library refuses a colour image for a grey model too; here the message names the file and the flag.
        for (const [k, im] of images.entries()) {
          const n = colourPixels(im);
          if (n > 0) fail(`image '${files.files[from + k]}' is a colour image (${n} of its ${im.width * im.height} pixels have R, G, B not all equal), but the model takes grey images; pass --grey to convert it by its luma (ITU-R BT.601)`);
        }
      }
      const p = await model.predict(images, { samples: values.samples, seed: values.seed, step: from, batchSize, image });
      const batch = rowsOf(files.files.slice(from, to), p, classNames);
      if (values.json) for (const r of batch) console.log(JSON.stringify(r));
      rows.push(...batch);
    }
    if (!values.json) {
      for (const line of table(rows)) console.log(line);
    }
  } finally {
    model.dispose();
  }
}
