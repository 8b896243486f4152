import { describe, expect, it } from 'vitest';
import { BayesError } from '../../src/errors.js';
import { augmentImages, flipHorizontal, rotateImages, toFloatImages } from '../../src/data/preprocess.js';
import { expectClose, randomArray } from '../helpers.js';
import { resizeBilinearRef, rotateRef } from '../reference/preprocess.js';

function randomBytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from(randomArray(n, seed, 0, 256), Math.floor);
}

/** The input laid out HWC, from an NCHW array. */
function toHwc(x: Uint8Array, n: number, c: number, h: number, w: number): Uint8Array {
  const out = new Uint8Array(x.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let p = 0; p < h * w; p++) out[(i * h * w + p) * c + k] = x[(i * c + k) * h * w + p];
  return out;
}

describe('toFloatImages', () => {
  it('2x2 -> 4x4 bilinear with half-pixel centres matches the hand computation', () => {
    // Source positions per axis: (d + 0.5) * 2/4 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped 0, 0.25, 0.75, 1.
    // Row [0 4] -> [0 1 3 4]; row [8 12] -> [8 9 11 12]; rows mix with the same weights.
    const x = toFloatImages(Uint8Array.from([0, 4, 8, 12]), 1, 1, 2, 2, { resizeTo: 4 });
    const want = [0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12].map((v) => Math.fround(v / 255));
    expect(Array.from(x)).toEqual(want);
  });

  it('without resize: x / 255, exactly the float32 of the quotient', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const x = toFloatImages(bytes, 1, 1, 16, 16);
    for (let i = 0; i < 256; i++) expect(x[i]).toBe(Math.fround(i / 255));
  });

  for (const [n, c, h, w, oh, ow] of [
    [3, 1, 28, 28, 32, 32], // MNIST as the seed trains it
    [2, 3, 5, 7, 32, 9], // odd sizes, channels, upscale rows, mixed columns
    [1, 2, 9, 9, 4, 3], // downscale (no antialias, PyTorch antialias=False)
    [2, 1, 1, 6, 3, 6], // a single row
  ]) {
    it(`matches the float64 reference: [${n}, ${c}, ${h}, ${w}] -> ${oh}x${ow}, CHW and HWC input`, () => {
      const bytes = randomBytes(n * c * h * w, n * 100 + h);
      const want = resizeBilinearRef(bytes, n, c, h, w, oh, ow, 1 / 255);
      // Tolerance 1e-7 of the largest value: float32 rounding of the output (2^-24 relative) only.
      expectClose(toFloatImages(bytes, n, c, h, w, { resizeTo: [oh, ow] }), want, 1e-7, 'chw');
      expectClose(toFloatImages(toHwc(bytes, n, c, h, w), n, c, h, w, { resizeTo: [oh, ow], layout: 'hwc' }), want, 1e-7, 'hwc');
      const floats = Float32Array.from(bytes, (v) => v / 255);
      expectClose(toFloatImages(floats, n, c, h, w, { resizeTo: [oh, ow] }), want, 1e-7, 'float input');
    });
  }

  it('rejects wrong lengths, bad sizes and layouts before converting', () => {
    const bytes = new Uint8Array(2 * 4 * 4);
    expect(() => toFloatImages(bytes, 3, 1, 4, 4)).toThrow(/toFloatImages: argument 'images' expected 48 values \(count 3 x channels 1 x 4 x 4\), got 32/);
    expect(() => toFloatImages(bytes, 2, 1, 4, 4, { resizeTo: 0 })).toThrow(/argument 'resizeTo' expected an integer >= 1, got 0/);
    expect(() => toFloatImages(bytes, 2, 1, 4, 4, { layout: 'nhwc' as 'hwc' })).toThrow(/argument 'layout'/);
    expect(() => toFloatImages([1, 2] as unknown as Uint8Array, 1, 1, 1, 2)).toThrow(BayesError);
  });
});

describe('rotateImages', () => {
  const n = 5;
  const img = Float32Array.from(randomArray(2 * n * n, 7, 0, 1)); // [2, 1, 5, 5]

  it('by 0 degrees is the identity, bit for bit', () => {
    expect(Array.from(rotateImages(img, 2, 1, n, n, 0))).toEqual(Array.from(img));
  });

  it('quarter turns of a square image are exact transposes and flips', () => {
    const odd = Float32Array.from(randomArray(3 * 4 * 4, 8, 0, 1)); // [1, 3, 4, 4]: even size, centre between pixels
    for (const [x, c, s] of [[img, 1, n], [odd, 3, 4]] as const) {
      const count = x.length / (c * s * s);
      const r90 = rotateImages(x, count, c, s, s, 90);
      const r180 = rotateImages(x, count, c, s, s, 180);
      const r270 = rotateImages(x, count, c, s, s, -90);
      for (let p = 0; p < count * c; p++) {
        for (let r = 0; r < s; r++) {
          for (let q = 0; q < s; q++) {
            const at = (rr: number, cc: number) => x[p * s * s + rr * s + cc];
            // Counter-clockwise: the top-right corner goes to the top-left.
            expect(r90[p * s * s + r * s + q]).toBe(at(q, s - 1 - r));
            expect(r180[p * s * s + r * s + q]).toBe(at(s - 1 - r, s - 1 - q));
            expect(r270[p * s * s + r * s + q]).toBe(at(s - 1 - q, r));
          }
        }
      }
    }
  });

  it('turns counter-clockwise as displayed: a pixel right of the centre moves above it', () => {
    const one = new Float32Array(25);
    one[2 * 5 + 4] = 1; // row 2 (centre row), column 4 (right edge)
    const r = rotateImages(one, 1, 1, 5, 5, 90);
    expect(r[0 * 5 + 2]).toBe(1); // row 0, centre column
    expect(r.reduce((a, b) => a + b)).toBe(1);
  });

  it('matches the float64 reference at arbitrary angles, with zero fill outside', () => {
    const x = Float32Array.from(randomArray(3 * 2 * 7 * 6, 9, 0, 1)); // [3, 2, 7, 6]
    const angles = [10, -7.3, 33];
    // Tolerance 1e-6 of the largest value: float32 output rounding and cos/sin of the same angles.
    expectClose(rotateImages(x, 3, 2, 7, 6, angles), rotateRef(x, 3, 2, 7, 6, angles), 1e-6, 'rotate');
    const corner = rotateImages(new Float32Array(49).fill(1), 1, 1, 7, 7, 45);
    expect(corner[0]).toBe(0); // the corner samples outside the input
    expect(corner[3 * 7 + 3]).toBe(1);
  });

  it('rejects a wrong number of angles or non-finite angles', () => {
    expect(() => rotateImages(img, 2, 1, n, n, [1, 2, 3])).toThrow(/rotateImages: argument 'degrees' expected shape \[2\]/);
    expect(() => rotateImages(img, 2, 1, n, n, NaN)).toThrow(/argument 'degrees' expected a finite number/);
  });
});

describe('augmentation', () => {
  const x = Float32Array.from(randomArray(4 * 3 * 6 * 6, 11, 0, 1)); // [4, 3, 6, 6]

  it('flipHorizontal mirrors every row of the chosen images', () => {
    const f = flipHorizontal(x, 4, 3, 6, 6, [true, false, true, false]);
    for (let i = 0; i < 6; i++) {
      expect(f[i]).toBe(x[5 - i]); // image 0, channel 0, row 0
      expect(f[3 * 36 + i]).toBe(x[3 * 36 + i]); // image 1 untouched
    }
  });

  it('augmentImages is reproducible from the seed, and draws angles within +-rotationDegrees', () => {
    const a = augmentImages(x, 4, 3, 6, 6, { rotationDegrees: 10, horizontalFlip: true }, 5);
    const b = augmentImages(x, 4, 3, 6, 6, { rotationDegrees: 10, horizontalFlip: true }, 5);
    const c = augmentImages(x, 4, 3, 6, 6, { rotationDegrees: 10, horizontalFlip: true }, 6);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(Array.from(augmentImages(x, 4, 3, 6, 6, {}, 1))).toEqual(Array.from(x));
    expect(() => augmentImages(x, 4, 3, 6, 6, { rotationDegrees: -1 }, 1)).toThrow(/argument 'rotationDegrees' expected a number >= 0/);
    expect(() => augmentImages(x, 4, 3, 6, 6, {}, -1)).toThrow(/argument 'seed'/);
  });
});
