/**
 * `bayesgpu predict` on PNG and JPEG files written here, run as the built binary (dist/cli.js).
 * Its figures are compared with model.predict on the same pixels through the library (the same
 * checkpoint loaded here, the same Monte Carlo keys), and checked against themselves in float64:
 * the predicted class is the argmax of the printed probabilities, its probability their max, and
 * the predictive entropy -sum p ln p of them.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../../src/gpu/context.js';
import { loadModelFile, saveModelFile } from '../../src/io/checkpoint_files.js';
import type { ImageOptions, RawImage } from '../../src/nn/image_input.js';
import { Conv2d, Flatten, Linear, ReLU } from '../../src/nn/layers.js';
import { Model, resolveConfig } from '../../src/nn/models.js';
import { Sequential } from '../../src/nn/sequential.js';
import type { ImagePrediction } from '../../src/cli/predict.js';
import { context } from '../helpers.js';
import { runBuilt } from './run_cli.js';

const NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

/** A grey test card: a bright disc off centre on a dark ramp, `w` x `h`. */
function greyCard(w: number, h: number, shift = 0): Uint8Array {
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const d = Math.hypot(x - w * 0.4 - shift, y - h * 0.55);
      out[y * w + x] = d < Math.min(w, h) * 0.3 ? 230 - ((x * 3) % 40) : (x + y) % 50;
    }
  }
  return out;
}

/** RGBA colour pixels, `w` x `h`. */
function colourCard(w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 4);
  for (let p = 0; p < w * h; p++) out.set([(p * 7) % 256, (p * 3 + 80) % 256, (p * 11) % 200, 255], 4 * p);
  return out;
}

function entropy(p: readonly number[]): number {
  let h = 0;
  for (const v of p) if (v > 0) h -= v * Math.log(v);
  return h;
}

function jsonLines(stdout: string): ImagePrediction[] {
  const lines = stdout.split('\n').filter(Boolean);
  return lines.map((l) => JSON.parse(l) as ImagePrediction);
}

describe('bayesgpu predict (built CLI)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'bayesgpu-cli-predict-'));
  let ctx: Context;
  const grey = join(scratch, 'grey.safetensors');
  const colour = join(scratch, 'colour.safetensors');
  const files: Record<string, RawImage> = {};
  const path = (name: string) => join(scratch, name);

  beforeAll(async () => {
    ctx = await context();
    // A Bayesian LeNet as bayesgpu train saves it (class names, preprocessing), freshly built.
    const lenet = new Model(ctx, resolveConfig('test', 'lenet', true, {}), 5, { classNames: NAMES, preprocessing: { resize: 'area', mean: [0], std: [1] } });
    await saveModelFile(grey, lenet);
    lenet.dispose();
    // A small frequentist network of its own, for colour images, without class names.
    const net = new Sequential(ctx, { conv: new Conv2d(3, 4, 3), act: new ReLU(), flatten: new Flatten(), fc: new Linear(null, 5) }, { inputShape: [3, 12, 12], seed: 2 });
    await saveModelFile(colour, net);
    net.dispose();

    // PNG: grey 28 x 28 and 40 x 36; JPEG: colour 30 x 20 (jpeg-js decodes it here as the CLI does).
    files['digit.png'] = { data: greyCard(28, 28), width: 28, height: 28, channels: 1 };
    files['wide.png'] = { data: greyCard(40, 36, 4), width: 40, height: 36, channels: 1 };
    writeFileSync(path('digit.png'), encodePng({ width: 28, height: 28, data: files['digit.png'].data, channels: 1, depth: 8 }));
    writeFileSync(path('wide.png'), encodePng({ width: 40, height: 36, data: files['wide.png'].data, channels: 1, depth: 8 }));
    const jpegBytes = jpeg.encode({ width: 30, height: 20, data: colourCard(30, 20) }, 90).data;
    writeFileSync(path('photo.jpg'), jpegBytes);
    const decoded = jpeg.decode(jpegBytes, { useTArray: true, formatAsRGBA: true });
    files['photo.jpg'] = { data: decoded.data, width: decoded.width, height: decoded.height, channels: 4 };
    // A folder: two images (one with an upper-case extension), and a file that is not an image.
    mkdirSync(path('folder'));
    writeFileSync(path('folder/b.png'), encodePng({ width: 28, height: 28, data: files['digit.png'].data, channels: 1, depth: 8 }));
    writeFileSync(path('folder/a.JPEG'), jpegBytes);
    writeFileSync(path('folder/notes.txt'), 'not an image');
    // Bad files.
    writeFileSync(path('notes.png'), 'plain text, not a PNG');
    const png = encodePng({ width: 28, height: 28, data: files['digit.png'].data, channels: 1, depth: 8 });
    writeFileSync(path('cut.png'), png.subarray(0, 60));
    writeFileSync(path('cut.jpg'), jpegBytes.subarray(0, 40));
  });
  afterAll(() => {
    ctx.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });

  /**
   * model.predict through the library on the same pixels, with the CLI's keys: seed 1, and batches
   * of the CLI's --batch-size (default 64), whose first image's index is the batch's step.
   */
  async function reference(checkpoint: string, names: string[], samples: number, image: ImageOptions = {}, batchSize = 64) {
    const model = await loadModelFile(ctx, checkpoint);
    try {
      return await model.predict(names.map((n) => files[n]), { samples, seed: 1, image, batchSize });
    } finally {
      model.dispose();
    }
  }

  function expectSame(rows: ImagePrediction[], names: string[], ref: Awaited<ReturnType<typeof reference>>, classNames: string[] | null) {
    expect(rows.map((r) => r.file)).toEqual(names.map(path));
    for (const [i, r] of rows.entries()) {
      const probs = [...ref.mean.subarray(i * ref.classes, (i + 1) * ref.classes)];
      const k = ref.predicted[i];
      expect(r.class, r.file).toBe(k);
      expect(r.className).toBe(classNames ? classNames[k] : null);
      for (const [c, p] of probs.entries()) expect(r.probabilities[c]).toBeCloseTo(p, 6);
      expect(r.probability).toBeCloseTo(probs[k], 6);
      expect(r.predictiveEntropy).toBeCloseTo(ref.predictiveEntropy[i], 6);
      expect(r.mutualInformation).toBeCloseTo(ref.mutualInformation[i], 6);
      expect(r.epistemic).toBeCloseTo(ref.epistemic[i * ref.classes + k], 8);
      expect(r.aleatoric).toBeCloseTo(ref.aleatoric[i * ref.classes + k], 8);
      // The figures against themselves, in float64.
      expect(r.class).toBe(r.probabilities.indexOf(Math.max(...r.probabilities)));
      expect(r.probability).toBe(Math.max(...r.probabilities));
      expect(r.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(r.predictiveEntropy).toBeCloseTo(entropy(r.probabilities), 5);
      expect(r.mutualInformation).toBeGreaterThanOrEqual(-1e-6);
      expect(r.mutualInformation).toBeLessThanOrEqual(r.predictiveEntropy + 1e-6);
    }
  }

  it("PNG and JPEG files, --json: one JSON line per image, the library's figures for the same pixels", async () => {
    const names = ['digit.png', 'wide.png', 'photo.jpg'];
    const run = await runBuilt(['predict', '--checkpoint', grey, '--samples', '8', '--grey', '--json', ...names.map(path)]);
    expect(run.code, run.stderr).toBe(0);
    const rows = jsonLines(run.stdout);
    expect(rows).toHaveLength(3);
    const ref = await reference(grey, names, 8, { grey: true });
    expectSame(rows, names, ref, NAMES);
    // A Bayesian model disagrees with itself a little: the samples differ.
    expect(rows.every((r) => r.mutualInformation > 0 && r.epistemic > 0)).toBe(true);
  });

  it('the saved preprocessing applies, the flags override it; --batch-size', async () => {
    const names = ['digit.png', 'wide.png'];
    const flags = ['--invert', '--resize', 'bilinear', '--center-by-mass'];
    const run = await runBuilt(['predict', '--checkpoint', grey, '--samples', '6', '--json', '--batch-size', '1', ...flags, ...names.map(path)]);
    expect(run.code, run.stderr).toBe(0);
    const rows = jsonLines(run.stdout);
    const ref = await reference(grey, names, 6, { invert: true, resize: 'bilinear', centerByMass: true }, 1);
    expectSame(rows, names, ref, NAMES);
    // Without the flags the figures are those of the saved preprocessing, and differ.
    const plain = jsonLines((await runBuilt(['predict', '--checkpoint', grey, '--samples', '6', '--json', ...names.map(path)])).stdout);
    expectSame(plain, names, await reference(grey, names, 6), NAMES);
    expect(plain[0].probabilities).not.toEqual(rows[0].probabilities);
  });

  it('a colour model takes the JPEG as it is; no class names: the class index', async () => {
    const run = await runBuilt(['predict', '--checkpoint', colour, '--json', path('photo.jpg')]);
    expect(run.code, run.stderr).toBe(0);
    const rows = jsonLines(run.stdout);
    expectSame(rows, ['photo.jpg'], await reference(colour, ['photo.jpg'], 1), null);
    // A frequentist network is one sample: no epistemic part.
    expect(rows[0].mutualInformation).toBeCloseTo(0, 6);
    expect(rows[0].epistemic).toBe(0);
  });

  it('a folder: its .png/.jpg/.jpeg files in name order; the table by default', async () => {
    const run = await runBuilt(['predict', '--checkpoint', grey, '--samples', '4', '--grey', path('folder')]);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0].split(/\s+/)).toEqual(['file', 'class', 'p', 'entropy', 'MI', 'epistemic', 'aleatoric']);
    expect(lines).toHaveLength(3);
    const json = jsonLines((await runBuilt(['predict', '--checkpoint', grey, '--samples', '4', '--grey', '--json', path('folder')])).stdout);
    expect(json.map((r) => r.file)).toEqual([join(path('folder'), 'a.JPEG'), join(path('folder'), 'b.png')]);
    for (const [i, r] of json.entries()) {
      const cells = lines[i + 1].split(/\s+/);
      expect(cells).toEqual([r.file, r.className, r.probability.toFixed(4), r.predictiveEntropy.toFixed(4), r.mutualInformation.toFixed(4), r.epistemic.toExponential(3), r.aleatoric.toExponential(3)]);
    }
  });

  it('a bad file: one line naming it, exit 2, before the checkpoint is even read', async () => {
    const missing = path('no-such.safetensors'); // the images are checked first: this is never opened
    const cases: [string, RegExp][] = [
      ['notes.png', /'[^']*notes\.png' is not a PNG or JPEG file \(it starts with bytes 70 6c 61 69\)/],
      ['cut.png', /'[^']*cut\.png' is not a valid PNG file/],
      ['cut.jpg', /'[^']*cut\.jpg' is not a valid JPEG file/],
      ['folder/notes.txt', /'[^']*notes\.txt' is not a PNG or JPEG file/],
      ['nothing-here.png', /image '[^']*nothing-here\.png' does not exist/],
    ];
    for (const [name, message] of cases) {
      const run = await runBuilt(['predict', '--checkpoint', missing, path('digit.png'), path(name)]);
      expect(run.code, name).toBe(2);
      expect(run.stdout).toBe('');
      const lines = run.stderr.split('\n').filter(Boolean);
      expect(lines, run.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^bayesgpu predict: /);
      expect(lines[0]).toMatch(message);
    }
    const empty = join(scratch, 'empty');
    mkdirSync(empty);
    const run = await runBuilt(['predict', '--checkpoint', grey, empty]);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`bayesgpu predict: folder '${empty}' has no .png, .jpg, .jpeg files`);
    // The checkpoint: missing, or not a model.
    const noModel = await runBuilt(['predict', '--checkpoint', missing, path('digit.png')]);
    expect(noModel.code).toBe(2);
    expect(noModel.stderr.trim().split('\n')).toHaveLength(1);
    expect(noModel.stderr).toMatch(/option '--checkpoint' expected a model saved by bayesgpu train or saveModel .*no-such\.safetensors/);
    const notModel = await runBuilt(['predict', '--checkpoint', path('digit.png'), path('digit.png')]);
    expect(notModel.code).toBe(2);
    expect(notModel.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a colour image for a grey model without --grey: one line naming the file and the flag, exit 2', async () => {
    const run = await runBuilt(['predict', '--checkpoint', grey, path('digit.png'), path('photo.jpg')]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/image '[^']*photo\.jpg' is a colour image .* pass --grey/);
  });
});
