/**
 * Images -> model input (shaders/image.wgsl, src/ops/image.ts, src/nn/image_input.ts), the RawImage
 * path, against the float64 reference (test/reference/image.ts): resize up and down on non-square
 * images with each filter, grey conversion, inversion, centring by mass, normalization, a region,
 * a batch of images of different sizes and channels; the training data's own resize; bad input.
 *
 * Tolerance: the kernel computes sample positions and weights in f32 (sources here are at most 64
 * pixels wide: positions to ulp(64) = 4e-6 px, and a value changes by at most 1 per pixel) and
 * adds at most (64 / 8 + 1)^2 taps of values <= 1 with weights summing to 1 (relative 2^-24 each):
 * 2e-5 on values in [0, 1], divided by the smallest std when normalizing.
 */
import { describe, expect, it } from 'vitest';
import { BayesError, Flatten, Linear, Sequential, toFloatImages } from '../../src/index.js';
import { type ImageOptions, type RawImage, imagesToTensor, isImageSource } from '../../src/nn/image_input.js';
import type { Preprocessing } from '../../src/nn/sequential.js';
import { type ReferenceOptions, centreOfMass, preprocessReference } from '../reference/image.js';
import { context, rng } from '../helpers.js';

const TOLERANCE = 2e-5;

async function model(inputShape: number[], preprocessing?: Preprocessing): Promise<Sequential> {
  return new Sequential(await context(), { flat: new Flatten(), fc: new Linear(null, 3) }, { inputShape, preprocessing });
}

/** A w x h image of `channels` random bytes; `grey` makes R = G = B. */
function randomImage(width: number, height: number, channels: 1 | 3 | 4, seed: number, grey = false): RawImage {
  const r = rng(seed);
  const data = new Uint8Array(width * height * channels);
  for (let p = 0; p < width * height; p++) {
    const g = Math.floor(r() * 256);
    for (let c = 0; c < channels; c++) data[p * channels + c] = c === 3 ? 255 : grey ? g : Math.floor(r() * 256);
  }
  return { data, width, height, channels };
}

/** A grey image of black with a bright rectangle [x0, x1) x [y0, y1), edges at half strength. */
function blob(width: number, height: number, x0: number, y0: number, x1: number, y1: number): RawImage {
  const data = new Uint8Array(width * height);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * width + x] = x === x0 || y === y0 ? 128 : 250;
  return { data, width, height, channels: 1 };
}

function maxAbs(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Number.isNaN(got[i]) ? Infinity : Math.abs(got[i] - want[i]));
  return worst;
}

/** imagesToTensor on `images` vs the reference of each, with the model's [C, H, W] and `options`. */
async function compare(m: Sequential, images: RawImage[], options: ImageOptions, reference: Partial<ReferenceOptions> = {}, tolerance = TOLERANCE): Promise<Float32Array> {
  const [channels, height, width] = m.inputShape as [1 | 3, number, number];
  const x = await imagesToTensor(m, images, options);
  try {
    expect(x.shape).toEqual([images.length, channels, height, width]);
    const got = (await x.read()) as Float32Array;
    const per = channels * height * width;
    const saved = m.modelOptions.preprocessing ?? {};
    images.forEach((image, n) => {
      const region = options.region ? ([options.region.x, options.region.y, options.region.width, options.region.height] as const) : undefined;
      const want = preprocessReference({ ...image, channels: image.channels ?? 4 }, { height, width, channels, ...saved, ...options, region, ...reference });
      const err = maxAbs(got.subarray(n * per, (n + 1) * per), want);
      expect(err, `image ${n} (${image.width} x ${image.height} x ${image.channels ?? 4}), ${JSON.stringify(options)}`).toBeLessThanOrEqual(tolerance);
    });
    return got;
  } finally {
    x.dispose();
  }
}

describe('images -> model input (RawImage)', () => {
  it('resizes up, down and mixed on non-square images with each filter', async () => {
    const cases: [RawImage, number[]][] = [
      [randomImage(13, 7, 1, 1), [1, 9, 20]], // up in both
      [randomImage(40, 30, 1, 2), [1, 8, 12]], // down in both, by non-integer factors
      [randomImage(30, 6, 1, 3), [1, 10, 15]], // down in x, up in y
      [randomImage(64, 48, 1, 4), [1, 16, 16]], // down by integer factors
    ];
    for (const [image, shape] of cases) {
      const m = await model(shape);
      for (const resize of ['area', 'bilinear', 'nearest'] as const) await compare(m, [image], { resize });
      m.dispose();
    }
  });

  it('area keeps a one-pixel stroke when shrinking 8x; bilinear alone would miss it', async () => {
    const image = blob(64, 64, 0, 0, 0, 0);
    for (let y = 0; y < 64; y++) image.data[y * 64 + 37] = 255; // a vertical line at x = 37
    const m = await model([1, 8, 8]);
    const area = await compare(m, [image], { resize: 'area' });
    const bilinear = await compare(m, [image], { resize: 'bilinear' });
    // Column 4 covers x in [32, 40): the line is 1/8 of it.
    expect(Math.abs(area[4] - 1 / 8)).toBeLessThan(1e-6);
    // Bilinear samples x = 35.5 and 36.5 only for column 4, between pixels 35..37: 0 there.
    expect(Math.max(...bilinear)).toBe(0);
    m.dispose();
  });

  it("enlarging 28 -> 32 gives exactly the training data's resize (toFloatImages)", async () => {
    const image = randomImage(28, 28, 1, 5);
    const m = await model([1, 32, 32]);
    const x = await imagesToTensor(m, [image]);
    const want = toFloatImages(image.data as Uint8Array, 1, 1, 28, 28, { resizeTo: 32 });
    // Both f32, the same two-tap formula: a few ulp of values <= 1.
    expect(maxAbs((await x.read()) as Float32Array, want)).toBeLessThan(1e-6);
    x.dispose();
    m.dispose();
  });

  it('colour to grey by BT.601 luma (grey: true), RGB and RGBA; RGB models keep colour or repeat grey', async () => {
    const grey = await model([1, 10, 14]);
    await compare(grey, [randomImage(21, 17, 3, 6), randomImage(9, 11, 4, 7)], { grey: true });
    // A grey RGBA image needs no `grey`: its luma is its value.
    await compare(grey, [randomImage(12, 12, 4, 8, true)], {});
    grey.dispose();
    const rgb = await model([3, 10, 14]);
    await compare(rgb, [randomImage(21, 17, 3, 6), randomImage(9, 11, 4, 7), randomImage(30, 20, 1, 9)], {});
    rgb.dispose();
  });

  it('inverts (dark ink on a light page -> light on black)', async () => {
    const page = randomImage(25, 19, 1, 10);
    const m = await model([1, 12, 9]);
    const inverted = await compare(m, [page], { invert: true });
    const plain = await compare(m, [page], { invert: false });
    expect(maxAbs(inverted, plain.map((v) => 1 - v))).toBeLessThan(1e-6);
    const rgb = await model([3, 7, 7]);
    await compare(rgb, [randomImage(13, 13, 3, 11)], { invert: true, resize: 'bilinear' });
    m.dispose();
    rgb.dispose();
  });

  it('centres by mass: the centre of mass moves to pixel (W / 2, H / 2)', async () => {
    const m = await model([1, 20, 28]);
    for (const [image, resize] of [[blob(56, 40, 4, 3, 17, 15), 'area'], [blob(14, 10, 8, 1, 12, 6), 'bilinear'], [blob(56, 40, 30, 20, 50, 36), 'nearest']] as const) {
      const got = await compare(m, [image], { centerByMass: true, resize });
      if (resize === 'nearest') continue; // whole source pixels: the centre moves in steps
      const [cx, cy] = centreOfMass(got, 20, 28);
      // The shifted blob stays inside the frame; resampling moves the centre by a little less than a pixel's rounding.
      expect(Math.abs(cx - 14), `${resize}: x ${cx}`).toBeLessThan(0.05);
      expect(Math.abs(cy - 10), `${resize}: y ${cy}`).toBeLessThan(0.05);
    }
    // A blank image is not shifted (no mass): zeros.
    const blank = await compare(m, [blob(10, 10, 0, 0, 0, 0)], { centerByMass: true });
    expect(blank.every((v) => v === 0)).toBe(true);
    // With inversion, centring uses the inverted values (the ink).
    const page = blob(30, 30, 2, 2, 9, 12);
    page.data.forEach((v, i) => (page.data[i] = 255 - v));
    await compare(m, [page], { centerByMass: true, invert: true });
    m.dispose();
  });

  it('normalizes per channel: (v - mean[c]) / std[c]', async () => {
    const rgb = await model([3, 9, 11]);
    await compare(rgb, [randomImage(23, 16, 4, 12)], { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }, {}, TOLERANCE / 0.224);
    rgb.dispose();
    const grey = await model([1, 9, 11]);
    await compare(grey, [randomImage(23, 16, 1, 13)], { mean: [0.1307], std: [0.3081], centerByMass: true, invert: true }, {}, TOLERANCE / 0.3081);
    grey.dispose();
  });

  it('a region of the source (reaching past the image: background) fills the input', async () => {
    const m = await model([1, 16, 16]);
    const image = blob(40, 30, 10, 5, 25, 28);
    await compare(m, [image], { region: { x: 5, y: -10, width: 48, height: 48 } });
    await compare(m, [image], { region: { x: 5, y: -10, width: 48, height: 48 }, invert: true, centerByMass: true });
    await compare(m, [image], { region: { x: 12.5, y: 6, width: 8, height: 8 }, resize: 'bilinear' });
    m.dispose();
  });

  it('a batch of images of different sizes and kinds becomes one [N, C, H, W] tensor', async () => {
    const m = await model([1, 12, 10]);
    const images = [randomImage(13, 7, 1, 14), randomImage(40, 30, 4, 15, true), randomImage(8, 20, 3, 16, true), blob(50, 60, 3, 10, 20, 40), randomImage(10, 12, 1, 17)];
    await compare(m, images, { centerByMass: true, invert: true });
    await compare(m, images, { resize: 'bilinear' });
    m.dispose();
  });

  it("the model's saved preprocessing gives the defaults; the call's options override them", async () => {
    const m = await model([1, 10, 10], { invert: true, mean: [0.5], std: [0.5], resize: 'bilinear' });
    const image = randomImage(31, 17, 1, 18);
    await compare(m, [image], {}, {}, TOLERANCE / 0.5);
    await compare(m, [image], { invert: false, resize: 'area' }, {}, TOLERANCE / 0.5);
    m.dispose();
  });

  it('isImageSource: RawImage-shaped objects (and in a page, the browser sources)', () => {
    expect(isImageSource({ data: new Uint8Array(4), width: 1, height: 1 })).toBe(true);
    expect(isImageSource({ data: new Uint8ClampedArray(3), width: 1, height: 1, channels: 3 })).toBe(true);
    for (const no of [null, 3, 'img', new Uint8Array(4), { data: new Float32Array(4), width: 1, height: 1 }, { data: new Uint8Array(4), shape: [1, 1] }]) expect(isImageSource(no)).toBe(false);
  });

  it('bad input: one BayesError naming what the model expects and what was given, nothing allocated', async () => {
    const ctx = await context();
    const grey = await model([1, 8, 8]);
    const rgb = await model([3, 8, 8]);
    const flat = new Sequential(ctx, { fc: new Linear(16, 2) }, { inputShape: [16] });
    const twoChannel = new Sequential(ctx, { flat: new Flatten(), fc: new Linear(null, 2) }, { inputShape: [2, 8, 8] });
    const ok = randomImage(4, 4, 1, 19);
    const cases: [Sequential, unknown[], ImageOptions, RegExp][] = [
      [grey, [new Float32Array(16)], {}, /argument 'sources\[0\]' expected an image source \(ImageData, .*RawImage.*\) for the model's input \[1, 8, 8\].*got Float32Array/],
      [grey, [ok, 'cat.png'], {}, /argument 'sources\[1\]' expected an image source .*got "cat\.png"/],
      [grey, [], {}, /argument 'sources' expected a non-empty array of image sources for the model's input \[1, 8, 8\]/],
      [grey, [randomImage(5, 3, 3, 20)], {}, /'sources\[0\]' is a colour image \(\d+ of its 15 pixels have R, G, B not all equal; a RawImage of 5 x 3\), but the model's input \[1, 8, 8\] .* is grey; pass \{ grey: true \}/],
      [grey, [{ data: new Uint8Array(0), width: 0, height: 4 }], {}, /'sources\[0\]' expected an image of at least 1 x 1 pixels, got a zero-sized RawImage \(0 x 4\)/],
      [grey, [{ data: new Uint8Array(10), width: 2, height: 2, channels: 3 }], {}, /'sources\[0\]\.data' expected 12 bytes \(2 x 2 x 3 channels\), got 10/],
      [grey, [{ data: new Uint8Array(8), width: 2, height: 2, channels: 2 }], {}, /'sources\[0\]\.channels' expected 1 \(grey\), 3 \(RGB\) or 4 \(RGBA\), got 2/],
      [flat, [ok], {}, /images need a model whose input is \[1 \| 3, H, W\].*this model's input is \[16\]/],
      [twoChannel, [ok], {}, /this model's input is \[2, 8, 8\]/],
      [rgb, [ok], { grey: true }, /'options\.grey' expected false or undefined for a model whose input has 3 channels/],
      [rgb, [ok], { mean: [0.5] }, /'options\.mean' expected 3 finite numbers \(one per channel/],
      [grey, [ok], { std: [0] }, /'options\.std' expected 1 positive finite number/],
      [grey, [ok], { resize: 'bicubic' as 'area' }, /'options\.resize' expected 'area', 'bilinear' or 'nearest', got "bicubic"/],
      [grey, [ok], { region: { x: 0, y: 0, width: 0, height: 4 } }, /'options\.region\.width' expected a positive finite number of pixels, got 0/],
      [grey, [ok], { invert: 1 as unknown as boolean }, /'options\.invert' expected a boolean, got 1/],
    ];
    const before = ctx.memory().liveTensors;
    for (const [m, sources, options, message] of cases) {
      const outcome = await imagesToTensor(m, sources, options).then(() => null, (e: unknown) => e);
      expect(outcome, String(message)).toBeInstanceOf(BayesError);
      expect((outcome as BayesError).message).toMatch(/^imagesToTensor: /);
      expect((outcome as BayesError).message).toMatch(message);
      expect(ctx.memory().liveTensors, `${message}: nothing allocated`).toBe(before);
    }
    // The same colour image is fine with grey: true.
    const x = await imagesToTensor(grey, [randomImage(5, 3, 3, 20)], { grey: true });
    expect(x.shape).toEqual([1, 1, 8, 8]);
    x.dispose();
    for (const m of [grey, rgb, flat, twoChannel]) m.dispose();
  });
});
