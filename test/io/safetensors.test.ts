import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BayesError } from '../../src/errors.js';
import {
  bf16ToF32, decodeSafetensors, encodeSafetensors, f16ToF32, f32ToBf16, f32ToF16, rawValues, readSafetensors, safetensorsBlob,
  type TensorEntry,
} from '../../src/io/safetensors.js';

const u32ToF32 = (bits: number) => new Float32Array(Uint32Array.of(bits).buffer)[0];
const f32Bits = (v: number) => new Uint32Array(Float32Array.of(v).buffer)[0];

/**
 * A minimal safetensors writer written here from the format description, not
 * with the encoder: the header text is spelled out by hand, unpadded, and the
 * data written with DataView little-endian setters.
 */
function handWritten(header: string, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function badFile(bytes: Uint8Array, ...parts: string[]): void {
  try {
    decodeSafetensors(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(BayesError);
    expect((e as BayesError).code).toBe('BAD_FILE');
    for (const p of parts) expect((e as Error).message).toContain(p);
    return;
  }
  throw new Error(`expected BAD_FILE containing ${parts.join(', ')}`);
}

describe('safetensors round trip', () => {
  it('every dtype comes back bit for bit, with metadata, scalars and empty tensors', () => {
    const f32 = Float32Array.of(1.5, -0, Infinity, -Infinity, 1e-45, 3.4028234663852886e38, 0.1);
    const nanBits = new Float32Array(Uint32Array.of(0x7fc00001, 0xffa00000).buffer); // NaN payloads must survive
    const tensors: Record<string, TensorEntry> = {
      'conv1.W_mu': { dtype: 'F32', shape: [7], data: f32 },
      'conv1.W_rho': { dtype: 'F32', shape: [1, 2], data: nanBits },
      'fc.f64': { dtype: 'F64', shape: [3], data: Float64Array.of(Math.PI, -1e-310, 2 ** 60) },
      'bn.num_batches_tracked': { dtype: 'I64', shape: [], data: BigInt64Array.of(-(2n ** 62n)) },
      'u64': { dtype: 'U64', shape: [1], data: BigUint64Array.of(2n ** 64n - 1n) },
      'i32': { dtype: 'I32', shape: [2, 1], data: Int32Array.of(-2147483648, 7) },
      'u32': { dtype: 'U32', shape: [1], data: Uint32Array.of(4294967295) },
      'i16': { dtype: 'I16', shape: [2], data: Int16Array.of(-32768, 32767) },
      'u16': { dtype: 'U16', shape: [1], data: Uint16Array.of(65535) },
      'i8': { dtype: 'I8', shape: [3], data: Int8Array.of(-128, 0, 127) },
      'u8': { dtype: 'U8', shape: [2, 2], data: Uint8Array.of(0, 1, 254, 255) },
      'mask': { dtype: 'BOOL', shape: [3], data: Uint8Array.of(1, 0, 1) },
      'half': { dtype: 'F16', shape: [3], data: Uint16Array.of(0x3c00, 0x7e01, 0x8001) },
      'brain': { dtype: 'BF16', shape: [2], data: Uint16Array.of(0x4049, 0xff81) },
      'empty': { dtype: 'F32', shape: [0, 5], data: new Float32Array(0) },
    };
    const metadata = { format: 'bayesgpu/1', config: '{"model":"lenet"}', 'ünïcode': '✓' };
    const bytes = encodeSafetensors(tensors, metadata);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    expect(bytes[8]).toBe(0x7b); // '{'
    expect(bytes[8 + headerLength - 1] === 0x20 || bytes[8 + headerLength - 1] === 0x7d).toBe(true); // space padding or '}'

    const file = decodeSafetensors(bytes);
    expect(file.metadata).toEqual(metadata);
    expect([...file.tensors.keys()].sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const d = file.tensors.get(name)!;
      expect(d.dtype, name).toBe(t.dtype);
      expect(d.shape, name).toEqual(t.shape);
      const want = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      expect(Array.from(d.raw), name).toEqual(Array.from(want));
      expect(Array.from(rawValues(d) as ArrayLike<number>, String), name).toEqual(Array.from(t.data as ArrayLike<number>, String));
      expect(d.converted, name).toBe(t.dtype !== 'F32');
    }
    // float32 views: F32 as stored (NaN bits included), conversions for the rest.
    expect(Array.from(new Uint32Array(file.tensors.get('conv1.W_rho')!.data.buffer))).toEqual([0x7fc00001, 0xffa00000]);
    expect(Array.from(file.tensors.get('conv1.W_mu')!.data)).toEqual(Array.from(f32));
    expect(Array.from(file.tensors.get('fc.f64')!.data)).toEqual([Math.fround(Math.PI), -0, 2 ** 60]);
    expect(Array.from(file.tensors.get('bn.num_batches_tracked')!.data)).toEqual([-(2 ** 62)]);
    expect(Array.from(file.tensors.get('half')!.data)).toEqual([1, NaN, -(2 ** -24)]);
    expect(Array.from(file.tensors.get('brain')!.data)).toEqual([3.140625, NaN]);
    expect(Array.from(file.tensors.get('mask')!.data)).toEqual([1, 0, 1]);
    // Every tensor starts at a multiple of its element size (laid out largest elements first).
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
    for (const [name, t] of Object.entries(tensors)) {
      const size = { F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2 }[t.dtype as string] ?? 1;
      expect(header[name].data_offsets[0] % size, name).toBe(0);
    }
  });

  it('no tensors and no metadata is a valid file; metadata defaults to {}', () => {
    const file = decodeSafetensors(encodeSafetensors({}));
    expect(file.tensors.size).toBe(0);
    expect(file.metadata).toEqual({});
  });

  it('F16 and BF16 from Float32Array are rounded to nearest even', () => {
    const file = decodeSafetensors(encodeSafetensors({
      h: { dtype: 'F16', shape: [4], data: Float32Array.of(1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000) },
      b: { dtype: 'BF16', shape: [3], data: Float32Array.of(Math.PI, 1 + 2 ** -8, 1 + 3 * 2 ** -8) },
    }));
    expect(Array.from(rawValues(file.tensors.get('h')!) as Uint16Array)).toEqual([0x3c00, 0x3c00, 0x3c02, 0x7c00]);
    expect(Array.from(rawValues(file.tensors.get('b')!) as Uint16Array)).toEqual([0x4049, 0x3f80, 0x3f82]);
  });

  it('Blob in and out (browser path)', async () => {
    const blob = safetensorsBlob({ w: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } }, { a: 'b' });
    expect(blob.type).toBe('application/octet-stream');
    const file = await readSafetensors(blob);
    expect(Array.from(file.tensors.get('w')!.data)).toEqual([1, 2]);
    expect(file.metadata).toEqual({ a: 'b' });
    expect((await readSafetensors(await blob.arrayBuffer())).tensors.size).toBe(1);
  });

  it('the encoder rejects mismatched typed arrays, lengths, shapes and metadata', () => {
    expect(() => encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: Float64Array.of(1, 2) } }))
      .toThrow(/encodeSafetensors: argument 'tensor 'w'.data' expected Float32Array for dtype F32, got Float64Array/);
    expect(() => encodeSafetensors({ w: { dtype: 'F32', shape: [3], data: Float32Array.of(1, 2) } })).toThrow(/a typed array of 3 elements \(shape \[3\]\)/);
    expect(() => encodeSafetensors({ w: { dtype: 'F32', shape: [-2], data: Float32Array.of(1, 2) } })).toThrow(/'tensor 'w'.shape' expected an array of integers >= 0/);
    expect(() => encodeSafetensors({ w: { dtype: 'F8' as 'F32', shape: [1], data: Float32Array.of(1) } })).toThrow(/'tensor 'w'.dtype'/);
    expect(() => encodeSafetensors({ m: { dtype: 'BOOL', shape: [1], data: Uint8Array.of(2) } })).toThrow(/0 or 1 for dtype BOOL/);
    expect(() => encodeSafetensors({}, { epoch: 3 as unknown as string })).toThrow(/argument 'metadata\['epoch'\]' expected a string, got 3/);
    expect(() => encodeSafetensors({ __metadata__: { dtype: 'F32', shape: [], data: Float32Array.of(1) } })).toThrow(/reserved/);
  });
});

describe('decoding a file written by hand', () => {
  it('reads an unpadded header in any key order, F64 and F16 converted to float32', () => {
    const data = new Uint8Array(16 + 4 + 8);
    const v = new DataView(data.buffer);
    v.setFloat64(0, 0.1, true);
    v.setFloat64(8, -3, true);
    v.setUint16(16, 0x3555, true); // 0.333251953125
    v.setUint16(18, 0xfbff, true); // -65504
    v.setFloat32(20, 2.5, true);
    v.setFloat32(24, -0.75, true);
    const header =
      '{"w":{"data_offsets":[20,28],"shape":[2],"dtype":"F32"},' +
      '"__metadata__":{"epoch":"3"},' +
      '"d":{"dtype":"F64","shape":[2,1],"data_offsets":[0,16]},' +
      '"h":{"dtype":"F16","shape":[2],"data_offsets":[16,20]}}';
    const file = decodeSafetensors(handWritten(header, data));
    expect(file.metadata).toEqual({ epoch: '3' });
    expect(Array.from(file.tensors.get('w')!.data)).toEqual([2.5, -0.75]);
    expect(file.tensors.get('d')!.shape).toEqual([2, 1]);
    expect(Array.from(file.tensors.get('d')!.data)).toEqual([Math.fround(0.1), -3]);
    expect(file.tensors.get('d')!.converted).toBe(true);
    expect(Array.from(file.tensors.get('h')!.data)).toEqual([0.333251953125, -65504]);
    // The input shares no memory with the result.
    expect(file.tensors.get('w')!.data.buffer).not.toBe(data.buffer);
  });
});

describe('corrupt files are rejected with the tensor named', () => {
  const t = (dtype: string, shape: number[], b: number, e: number) => `{"dtype":"${dtype}","shape":[${shape}],"data_offsets":[${b},${e}]}`;

  it('truncated file and header length beyond the file', () => {
    badFile(new Uint8Array(5), 'truncated', '5 bytes');
    badFile(handWritten('{}', new Uint8Array(0)).subarray(0, 9), 'header length 2 is beyond the file', 'only 1 bytes follow');
    const good = encodeSafetensors({ w: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
    badFile(good.subarray(0, good.length - 3), "tensor 'w'", 'out of range', 'truncated file?');
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setUint32(4, 1, true); // 2^32: high word set
    badFile(huge, 'header length 4294967296 is beyond the file');
  });

  it('header not JSON, not an object, bad metadata', () => {
    badFile(handWritten('{"a":', new Uint8Array(0)), 'not valid UTF-8 JSON');
    badFile(handWritten('[1,2]', new Uint8Array(0)), 'not valid UTF-8 JSON', "not '{'");
    badFile(handWritten('{"__metadata__":{"epoch":3}}', new Uint8Array(0)), "'__metadata__' entry 'epoch' is 3, not a string");
    const invalidUtf8 = handWritten('{"a":1}', new Uint8Array(0));
    invalidUtf8[10] = 0xff;
    badFile(invalidUtf8, 'not valid UTF-8 JSON');
  });

  it('unknown dtype, bad shape, bad offsets', () => {
    badFile(handWritten(`{"x":${t('F8_E4M3', [1], 0, 1)}}`, new Uint8Array(1)), "tensor 'x'", 'unsupported dtype "F8_E4M3"');
    badFile(handWritten(`{"x":${t('F32', [-1], 0, 4)}}`, new Uint8Array(4)), "tensor 'x'", 'shape [-1]');
    badFile(handWritten(`{"x":${t('F32', [1], 4, 0)}}`, new Uint8Array(4)), "tensor 'x'", 'data_offsets [4,0]');
    badFile(handWritten(`{"x":${t('F32', [1], 0, 4)},"y":{"dtype":"F32","shape":[1]}}`, new Uint8Array(4)), "tensor 'y'", 'data_offsets undefined');
  });

  it('offsets out of range', () => {
    badFile(handWritten(`{"a":${t('F32', [1], 0, 4)},"b":${t('F32', [2], 4, 12)}}`, new Uint8Array(8)), "tensor 'b'", 'data_offsets [4, 12] are out of range', '8 bytes');
  });

  it('dtype size x shape differs from the byte length', () => {
    badFile(handWritten(`{"w":${t('F32', [2, 3], 0, 20)}}`, new Uint8Array(20)), "tensor 'w'", 'dtype F32 x shape [2, 3] is 24 bytes', 'span 20');
    badFile(handWritten(`{"w":${t('F16', [3], 0, 12)}}`, new Uint8Array(12)), "tensor 'w'", 'is 6 bytes');
  });

  it('overlapping tensors', () => {
    badFile(handWritten(`{"a":${t('F32', [2], 0, 8)},"b":${t('F32', [2], 4, 12)}}`, new Uint8Array(12)), "tensor 'b'", "overlap tensor 'a'");
    badFile(handWritten(`{"a":${t('F32', [1], 0, 4)},"b":${t('F32', [1], 0, 4)}}`, new Uint8Array(4)), 'overlap');
  });

  it('non-contiguous tensors: a gap before, between or after', () => {
    badFile(handWritten(`{"a":${t('F32', [1], 4, 8)}}`, new Uint8Array(8)), "tensor 'a'", 'not contiguous', 'bytes [0, 4)');
    badFile(handWritten(`{"a":${t('F32', [1], 0, 4)},"b":${t('F32', [1], 8, 12)}}`, new Uint8Array(12)), "tensor 'b'", 'not contiguous', "after tensor 'a'");
    badFile(handWritten(`{"a":${t('F32', [1], 0, 4)}}`, new Uint8Array(6)), "the last tensor 'a'", '2 bytes after');
  });
});

describe('float16 and bfloat16 conversions', () => {
  it('binary16 -> float32 known values', () => {
    const known: [number, number][] = [
      [0x0000, 0], [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0400, 2 ** -14], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24],
      [0x3555, 0.333251953125], [0x7c00, Infinity], [0xfc00, -Infinity],
    ];
    for (const [h, v] of known) expect(f16ToF32(h), h.toString(16)).toBe(v);
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
    expect(f16ToF32(0x7e00)).toBeNaN();
    expect(f16ToF32(0xfc01)).toBeNaN();
  });

  it('float32 -> binary16 agrees with numpy astype(float16) on ties, subnormals, overflow and random values', () => {
    const ref = JSON.parse(readFileSync(new URL('../reference/f16_numpy.json', import.meta.url), 'utf8')) as { pairs: [number, number][] };
    expect(ref.pairs.length).toBeGreaterThan(80);
    for (const [bits, half] of ref.pairs) expect(f32ToF16(u32ToF32(bits)), `float32 bits ${bits.toString(16)}`).toBe(half);
  });

  it('every finite binary16 survives f16 -> f32 -> f16, and NaN stays NaN', () => {
    for (let h = 0; h < 65536; h++) {
      const v = f16ToF32(h);
      if (Number.isNaN(v)) expect(f16ToF32(f32ToF16(v))).toBeNaN();
      else if (f32ToF16(v) !== h) throw new Error(`0x${h.toString(16)} -> ${v} -> 0x${f32ToF16(v).toString(16)}`);
    }
  });

  it('bfloat16 known values both ways, rounding to nearest even', () => {
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(bf16ToF32(0xc000)).toBe(-2);
    expect(bf16ToF32(0x4049)).toBe(3.140625);
    expect(bf16ToF32(0x7f80)).toBe(Infinity);
    expect(bf16ToF32(0x0001)).toBe(u32ToF32(0x00010000)); // a float32 subnormal
    expect(bf16ToF32(0x7fc0)).toBeNaN();
    expect(f32ToBf16(Math.PI)).toBe(0x4049);
    expect(f32ToBf16(u32ToF32(0x3f808000))).toBe(0x3f80); // tie, even stays
    expect(f32ToBf16(u32ToF32(0x3f818000))).toBe(0x3f82); // tie, odd rounds up
    expect(f32ToBf16(u32ToF32(0x3f808001))).toBe(0x3f81); // above the tie
    expect(f32ToBf16(3.4028234663852886e38)).toBe(0x7f80); // rounds to infinity
    expect(f32ToBf16(-Infinity)).toBe(0xff80);
    expect(f32ToBf16(NaN) & 0x7fc0).toBe(0x7fc0);
    expect(f32ToBf16(u32ToF32(0x7f800001)) & 0x7f80).toBe(0x7f80); // signalling NaN with low payload stays NaN
    expect(f32ToBf16(u32ToF32(0x7f800001)) & 0x7f).not.toBe(0);
    expect(f32Bits(bf16ToF32(f32ToBf16(-1.5)))).toBe(f32Bits(-1.5));
  });
});
