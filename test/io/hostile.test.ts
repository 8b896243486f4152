/**
 * Hand-made hostile files, one named case each: what decodeSafetensors,
 * loadCheckpoint and loadStateDict must refuse (with a BayesError code and a
 * message naming the culprit, numbers printed exactly), within a second, and
 * without allocating more than the file holds. Cases the fuzzer
 * (fuzz.test.ts) found are kept here under "regression".
 */
import { describe, expect, it } from 'vitest';
import { context } from '../helpers.js';
import { BayesError } from '../../src/errors.js';
import { type DecodedSafetensors, type TensorEntry, SAFETENSORS_LIMITS, decodeSafetensors, encodeSafetensors, f32ToBf16, f32ToF16 } from '../../src/io/safetensors.js';
import { loadCheckpoint, loadModel, loadStateDict, restoreOptimizer, saveCheckpoint } from '../../src/io/checkpoint.js';
import { BBBLeNet, LeNet } from '../../src/nn/models.js';
import { Adam } from '../../src/train/adam.js';
import type { Sequential } from '../../src/nn/sequential.js';
import { entry, expectRefused, f32Bytes, metered, rawFile } from './hostile_files.js';

/** decodeSafetensors must refuse `bytes` with BAD_FILE, allocating no typed-array memory, within a second. */
function refusedByDecoder(bytes: Uint8Array, ...parts: string[]): BayesError {
  const start = performance.now();
  const m = metered(() => decodeSafetensors(bytes));
  const ms = performance.now() - start;
  expect(ms, 'milliseconds').toBeLessThan(1000);
  expect(m.total, 'typed-array bytes allocated before refusing').toBe(0);
  return expectRefused(() => {
    if (m.error) throw m.error;
  }, 'BAD_FILE', 'decodeSafetensors: ', ...parts);
}

function decodedWithin(bytes: Uint8Array, ms = 1000): DecodedSafetensors {
  const start = performance.now();
  const m = metered(() => decodeSafetensors(bytes));
  expect(performance.now() - start, 'milliseconds').toBeLessThan(ms);
  if (m.error) throw m.error;
  expect(m.total, 'typed-array bytes allocated: the data section').toBeLessThanOrEqual(bytes.length);
  return m.result!;
}

const W = entry('"F32"', '[2]', '[0,8]');

describe('decodeSafetensors refuses hostile files before allocating', () => {
  it('a header length beyond the file, huge u64s included, is printed exactly', () => {
    const cases: [bigint, string][] = [
      [9n, '9'], [2n ** 32n, '4294967296'], [2n ** 53n + 1n, '9007199254740993'],
      [2n ** 63n, '9223372036854775808'], [2n ** 63n + 1n, '9223372036854775809'], [2n ** 64n - 1n, '18446744073709551615'],
    ];
    for (const [length, text] of cases) {
      const e = refusedByDecoder(rawFile('{} ', new Uint8Array(5), length), `header length ${text} is beyond the file: only 8 bytes follow`);
      expect(e.message).not.toMatch(/e\+|\d\.\d/); // no rounded double anywhere
    }
    refusedByDecoder(new Uint8Array(7), 'truncated: 7 bytes');
    refusedByDecoder(new Uint8Array(0), 'truncated: 0 bytes');
  });

  it('a header over the size limit is refused before it is decoded, even when the file holds it', () => {
    const limit = SAFETENSORS_LIMITS.headerBytes;
    const bytes = new Uint8Array(8 + limit + 8).fill(0x20);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(limit + 1), true);
    refusedByDecoder(bytes, `header length ${limit + 1} is over the limit of ${limit} bytes`);
  });

  it('a valid header of many megabytes loads within a second', () => {
    const blob = 'a'.repeat(12 * 1024 * 1024);
    const file = decodedWithin(rawFile(`{"__metadata__":{"blob":"${blob}"},"w":${W}}`, f32Bytes([1, 2])));
    expect(file.metadata.blob.length).toBe(blob.length);
    const padded = decodedWithin(rawFile(`{"w":${W}}${' '.repeat(12 * 1024 * 1024)}`, f32Bytes([1, 2])));
    expect(Array.from(padded.tensors.get('w')!.data)).toEqual([1, 2]);
  });

  it('millions of entries are refused at the value limit within a second', () => {
    const limit = SAFETENSORS_LIMITS.headerValues;
    const keys: string[] = [];
    for (let i = 0; i < 1_200_000; i++) keys.push(`"k${i}":""`);
    refusedByDecoder(rawFile(`{"__metadata__":{${keys.join(',')}}}`), `the header holds more than ${limit} JSON values`);
    refusedByDecoder(rawFile(`{"w":${entry('"F32"', `[${'1,'.repeat(2_000_000)}1]`, '[0,4]')}}`, f32Bytes([1])), `more than ${limit} JSON values`);
    const tensors: string[] = [];
    for (let i = 0; i < 200_000; i++) tensors.push(`"t${i}":${entry('"U8"', '[0]', '[0,0]')}`);
    refusedByDecoder(rawFile(`{${tensors.join(',')}}`), `more than ${limit} JSON values`);
  });

  it('30,000 empty tensors are a valid file and load within a second', () => {
    const tensors: string[] = [];
    for (let i = 0; i < 30_000; i++) tensors.push(`"t${i}":${entry('"U8"', '[0]', '[0,0]')}`);
    expect(decodedWithin(rawFile(`{${tensors.join(',')}}`)).tensors.size).toBe(30_000);
  });

  it('deep nesting is refused without exhausting the stack', () => {
    refusedByDecoder(rawFile(`{"a":${'['.repeat(200_000)}`), `nests deeper than ${SAFETENSORS_LIMITS.depth} levels`, "'a'");
    refusedByDecoder(rawFile(`{"__metadata__":${'{"x":'.repeat(100_000)}`), 'nests deeper');
  });

  it('offsets out of range, the wrong way round, not integers, or huge are refused with their exact text', () => {
    refusedByDecoder(rawFile(`{"w":${entry('"F32"', '[2]', '[0,12]')}}`, new Uint8Array(8)), "tensor 'w'", 'data_offsets [0, 12] are out of range: the data section has 8 bytes');
    refusedByDecoder(rawFile(`{"w":${entry('"F32"', '[2]', '[0,18446744073709551616]')}}`, new Uint8Array(8)), 'data_offsets [0, 18446744073709551616] are out of range');
    refusedByDecoder(rawFile(`{"w":${entry('"F32"', '[2]', '[18446744073709551615,18446744073709551623]')}}`, new Uint8Array(8)), '[18446744073709551615, 18446744073709551623] are out of range');
    refusedByDecoder(rawFile(`{"w":${entry('"F32"', '[2]', '[8,0]')}}`, new Uint8Array(8)), 'data_offsets [8,0] is not a pair');
    for (const offsets of ['[-8,0]', '[0,8.0]', '[0,8e0]', '[0,"8"]', '[0]', '[0,8,8]', 'null', '{"0":0}', '[0,1e400]', '[-0,8]']) {
      refusedByDecoder(rawFile(`{"w":${entry('"F32"', '[2]', offsets)}}`, new Uint8Array(8)), "tensor 'w'", `data_offsets ${offsets}`, 'is not a pair');
    }
  });

  it('overlapping tensors and gaps are refused; empty tensors may share an offset', () => {
    const data = new Uint8Array(16);
    refusedByDecoder(rawFile(`{"a":${entry('"F32"', '[2]', '[0,8]')},"b":${entry('"F32"', '[2]', '[0,8]')}}`, data.subarray(0, 8)), 'overlap');
    refusedByDecoder(rawFile(`{"a":${entry('"F32"', '[4]', '[0,16]')},"b":${entry('"F32"', '[2]', '[8,16]')}}`, data), "tensor 'b'", "overlap tensor 'a'");
    refusedByDecoder(rawFile(`{"a":${entry('"F32"', '[2]', '[0,8]')},"e":${entry('"F32"', '[0]', '[4,4]')}}`, data.subarray(0, 8)), "tensor 'e'", 'overlap');
    refusedByDecoder(rawFile(`{"a":${entry('"F32"', '[2]', '[8,16]')}}`, data), 'not contiguous', 'bytes [0, 8)');
    refusedByDecoder(rawFile(`{"a":${entry('"F32"', '[2]', '[0,8]')}}`, data), '8 bytes after the last tensor');
    refusedByDecoder(rawFile('{}', data.subarray(0, 3)), '3 bytes after the header (no tensors)');
    const ok = decodedWithin(rawFile(`{"e1":${entry('"F32"', '[0]', '[8,8]')},"a":${W},"e0":${entry('"F64"', '[3,0]', '[0,0]')},"e2":${entry('"U8"', '[0]', '[8,8]')}}`, f32Bytes([5, 6])));
    expect([...ok.tensors.keys()].sort()).toEqual(['a', 'e0', 'e1', 'e2']);
  });

  it('a dtype or shape that disagrees with the byte count is refused, the byte count exact', () => {
    refusedByDecoder(rawFile(`{"w":${entry('"F32"', '[3]', '[0,8]')}}`, new Uint8Array(8)), 'dtype F32 x shape [3] is 12 bytes, but data_offsets [0, 8] span 8');
    refusedByDecoder(rawFile(`{"w":${entry('"F16"', '[2]', '[0,8]')}}`, new Uint8Array(8)), 'dtype F16 x shape [2] is 4 bytes');
    refusedByDecoder(rawFile(`{"w":${entry('"F32"', '[4294967296, 4294967296]', '[0,8]')}}`, new Uint8Array(8)), 'is 73786976294838206464 bytes');
    refusedByDecoder(rawFile(`{"w":${entry('"U8"', '[9007199254740993]', '[0,8]')}}`, new Uint8Array(8)), 'shape [9007199254740993] is 9007199254740993 bytes');
    refusedByDecoder(rawFile(`{"w":${entry('"U8"', '[0,9007199254740993]', '[0,0]')}}`), 'shape [0, 9007199254740993]: dimension 1 is beyond 2^53 - 1');
    refusedByDecoder(rawFile(`{"w":${entry('"U8"', `[${Array(65).fill(1).join(',')}]`, '[0,1]')}}`, new Uint8Array(1)), 'shape has 65 dimensions, more than the limit of 64');
    for (const shape of ['[-1]', '[1.5]', '[2e0]', '["2"]', '[[2]]', '[null]', '2', '{}', 'null']) {
      refusedByDecoder(rawFile(`{"w":${entry('"F32"', shape, '[0,8]')}}`, new Uint8Array(8)), `shape ${shape} is not an array of integers >= 0`);
    }
    for (const dtype of ['"F8_E4M3"', '"f32"', '"F32 "', '32', 'null', '["F32"]']) {
      refusedByDecoder(rawFile(`{"w":${entry(dtype, '[2]', '[0,8]')}}`, new Uint8Array(8)), `unsupported dtype ${dtype}`);
    }
  });

  it('regression: a name given twice is refused (JSON.parse kept the last one silently)', () => {
    // Both entries claim the same bytes: the old decoder loaded one tensor 'w' and never saw the other.
    refusedByDecoder(rawFile(`{"w":${W},"w":${W}}`, f32Bytes([1, 2])), "the name 'w' appears twice in the header");
    refusedByDecoder(rawFile(`{"w":${W},"\\u0077":${entry('"F16"', '[4]', '[0,8]')}}`, f32Bytes([1, 2])), "the name 'w' appears twice");
    // A key twice inside one entry: the old decoder read the data as the last dtype given.
    refusedByDecoder(rawFile(`{"w":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}}`, f32Bytes([1, 2])), "the key 'dtype' appears twice in the entry of 'w'");
    refusedByDecoder(rawFile(`{"__metadata__":{"a":"1"},"__metadata__":{"a":"2"}}`), "the name '__metadata__' appears twice");
    refusedByDecoder(rawFile(`{"__metadata__":{"epoch":"1","epoch":"2"}}`), "the key 'epoch' appears twice in the entry of '__metadata__'");
  });

  it('regression: a metadata key "__proto__" is kept (plain assignment dropped it)', () => {
    const file = decodedWithin(rawFile('{"__metadata__":{"__proto__":"x","a":"b"}}'));
    expect(Object.keys(file.metadata)).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(file.metadata)).toBe(Object.prototype);
    expect(decodedWithin(rawFile(`{"__proto__":${W}}`, f32Bytes([1, 2]))).tensors.has('__proto__')).toBe(true);
  });

  it('non-string metadata and a metadata that is not an object are refused', () => {
    for (const v of ['3', '-1.5e300', 'null', 'true', '{}', '["a"]', '{"x":"y"}']) {
      refusedByDecoder(rawFile(`{"__metadata__":{"epoch":${v}}}`), `'__metadata__' entry 'epoch' is ${v}, not a string`);
    }
    for (const v of ['"x"', '[]', '3', 'null']) refusedByDecoder(rawFile(`{"__metadata__":${v}}`), `'__metadata__' is ${v}, not an object of strings`);
    for (const v of ['"x"', '[]', '3', 'null', 'true']) refusedByDecoder(rawFile(`{"w":${v}}`), `tensor 'w': entry is ${v}, not { dtype, shape, data_offsets }`);
    refusedByDecoder(rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}`, new Uint8Array(8)), "tensor 'w': unknown key 'extra'");
  });

  it('non-finite numbers, broken JSON and broken UTF-8 are refused', () => {
    for (const token of ['NaN', 'Infinity', '-Infinity', 'undefined', '+1', '01', '.5', '1.', '0x10', "'a'"]) {
      refusedByDecoder(rawFile(`{"w":${entry('"F32"', `[${token}]`, '[0,4]')}}`, new Uint8Array(4)), 'is not valid UTF-8 JSON', 'at character');
    }
    const broken = ['', ' {}', '[]', '{', '{"a"', '{"a":', '{"a":1,}', '{"a":1}x', '{"a":1} }', '{a:1}', '{"a":"\\x"}', '{"a":"\n"}', '{"a":"open}', '\ufeff{}'];
    for (const header of broken) refusedByDecoder(rawFile(header), 'is not valid UTF-8 JSON');
    const invalidUtf8 = rawFile('{"__metadata__":{"a":"bc"}}');
    invalidUtf8[8 + 22] = 0xc3; // a lead byte without its continuation
    refusedByDecoder(invalidUtf8, 'is not valid UTF-8 JSON');
    // Lone surrogates are valid JSON escapes: they decode.
    expect(decodedWithin(rawFile('{"__metadata__":{"a":"\\ud800"}}')).metadata.a).toBe('\ud800');
  });

  it('very long names are cut in messages', () => {
    const name = 'n'.repeat(1_000_000);
    const e = refusedByDecoder(rawFile(`{"${name}":${entry('"F32"', '[3]', '[0,8]')}}`, new Uint8Array(8)), 'a name of 1000000 characters');
    expect(e.message.length).toBeLessThan(600);
  });

  it('regression: a Node Buffer (a view into a shared pool) decodes its own bytes', () => {
    // The old decoder copied with Buffer.slice (a view) and read the floats from offset 0 of the pool.
    const file = encodeSafetensors({ w: { dtype: 'F32', shape: [3], data: Float32Array.of(1, 2, 3) }, h: { dtype: 'F16', shape: [1], data: Float32Array.of(0.5) } });
    const pooled = Buffer.from(file);
    expect(pooled.byteOffset).toBeGreaterThan(0);
    const decoded = decodeSafetensors(pooled);
    expect(Array.from(decoded.tensors.get('w')!.data)).toEqual([1, 2, 3]);
    expect(Array.from(decoded.tensors.get('h')!.data)).toEqual([0.5]);
    expect(decoded.tensors.get('w')!.raw.buffer).not.toBe(pooled.buffer);
    const odd = new Uint8Array(file.length + 3);
    odd.set(file, 3);
    expect(Array.from(decodeSafetensors(odd.subarray(3)).tensors.get('w')!.data)).toEqual([1, 2, 3]);
  });

  it('an accepted file allocates its data section once; conversion waits until data is read', () => {
    const bytes = encodeSafetensors({
      a: { dtype: 'F32', shape: [100], data: new Float32Array(100) },
      b: { dtype: 'U8', shape: [1000], data: new Uint8Array(1000) },
      c: { dtype: 'F16', shape: [10], data: new Float32Array(10) },
    });
    const m = metered(() => decodeSafetensors(bytes));
    expect(m.total).toBe(400 + 1000 + 20);
    expect(m.result!.tensors.get('b')!.data.length).toBe(1000); // converted now, on first read
  });
});

async function params(model: Sequential): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) out.set(name, (await p.value.read()) as Float32Array);
  return out;
}

async function expectUnchanged(model: Sequential, before: Map<string, Float32Array>): Promise<void> {
  const after = await params(model);
  for (const [name, v] of before) expect(Buffer.from(after.get(name)!.buffer).equals(Buffer.from(v.buffer)), `parameter ${name} changed`).toBe(true);
}

type Edit = (tensors: Record<string, TensorEntry & { data: Float32Array }>, metadata: Record<string, string>) => void;

/** The decoded checkpoint re-encoded as F32 after `edit`. */
function edited(file: DecodedSafetensors, edit: Edit): Uint8Array {
  const tensors: Record<string, TensorEntry & { data: Float32Array }> = {};
  for (const [name, t] of file.tensors) tensors[name] = { dtype: 'F32', shape: [...t.shape], data: Float32Array.from(t.data) };
  const metadata = { ...file.metadata };
  edit(tensors, metadata);
  return encodeSafetensors(tensors, metadata);
}

/**
 * loadCheckpoint must refuse, leave no GPU tensor behind, and finish within a second; and so must
 * loadModel, the public loader, which reads these 'bayesgpu/1' files through the same checks.
 */
async function refusedByLoader(bytes: Uint8Array, code: 'BAD_FILE' | 'CHECKPOINT_MISMATCH' | 'INVALID_ARGUMENT', ...parts: string[]): Promise<BayesError> {
  const ctx = await context();
  const live = ctx.memory().liveTensors;
  const start = performance.now();
  const e = expectRefused(() => loadCheckpoint(ctx, bytes), code, 'loadCheckpoint: ', ...parts);
  expect(performance.now() - start).toBeLessThan(1000);
  expect(ctx.memory().liveTensors, 'GPU tensors left behind').toBe(live);
  if (code !== 'INVALID_ARGUMENT') {
    expectRefused(() => loadModel(ctx, bytes), code, 'loadModel: ', ...parts);
    expect(ctx.memory().liveTensors, 'GPU tensors left behind by loadModel').toBe(live);
  }
  return e;
}

describe('loadCheckpoint refuses hostile checkpoints, changing nothing', async () => {
  const ctx = await context();
  const model = BBBLeNet(ctx, { imageSize: 16, classes: 2, seed: 4 });
  const adam = new Adam(model, { lr: 1e-3 });
  for (const s of adam.state.values()) {
    ctx.write(s.m, Float32Array.from({ length: s.m.size }, (_, i) => Math.sin(i)));
    ctx.write(s.v, Float32Array.from({ length: s.v.size }, (_, i) => 1 + Math.cos(i)));
  }
  adam.step = 3;
  const file = decodeSafetensors(await saveCheckpoint(model, { optimizer: adam }));
  const before = await params(model);

  it('NaN or ±Infinity in a parameter is refused, naming the tensor and the first bad index', async () => {
    const cases: [string, number, number, string][] = [
      ['conv1.W_mu', 37, NaN, 'holds NaN at index 37 (element [1, 0, 2, 2] of shape [6, 1, 5, 5])'],
      ['fc3.bias_rho', 1, Infinity, 'holds Infinity at index 1 (element [1] of shape [2])'],
      ['fc1.W_mu', 5, -Infinity, 'holds -Infinity at index 5 (element [0, 5] of shape [120, 16])'],
    ];
    for (const [name, index, value, text] of cases) {
      const bytes = edited(file, (t) => {
        t[name].data[index] = value;
        t[name].data[index + 1] = NaN; // only the first is named
      });
      await refusedByLoader(bytes, 'BAD_FILE', `tensor '${name}' ${text}`, 'must be finite');
      const tensors = decodeSafetensors(bytes).tensors;
      expectRefused(() => loadStateDict(model, tensors), 'BAD_FILE', `tensor '${name}' ${text}`);
    }
    await expectUnchanged(model, before);
  });

  it('F16, BF16 and F64 checkpoints load by conversion; an F16 inf, a BF16 NaN and an F64 beyond float32 are refused after it', async () => {
    for (const dtype of ['F16', 'BF16', 'F64'] as const) {
      const as = (tensors: Record<string, TensorEntry>) => {
        for (const t of Object.values(tensors)) {
          t.dtype = dtype;
          if (dtype === 'F64') t.data = Float64Array.from(t.data as Float32Array);
        }
      };
      const loaded = loadCheckpoint(ctx, edited(file, as));
      const got = await params(loaded.model);
      const round = dtype === 'F16' ? f32ToF16 : dtype === 'BF16' ? f32ToBf16 : null;
      for (const [name, v] of before) {
        const want = round ? decodeSafetensors(encodeSafetensors({ x: { dtype, shape: [v.length], data: v } })).tensors.get('x')!.data : v;
        expect(Buffer.from(got.get(name)!.buffer).equals(Buffer.from(want.buffer)), `${dtype} ${name}`).toBe(true);
      }
      expect(round === null || got.get('conv1.W_mu')![0] !== before.get('conv1.W_mu')![0] || dtype !== 'F16').toBe(true);
      loaded.model.dispose();
    }
    const f16 = edited(file, (t) => {
      for (const x of Object.values(t)) x.dtype = 'F16';
      t['conv2.W_rho'].data[10] = 70000; // beyond binary16's 65504: rounds to inf
    });
    await refusedByLoader(f16, 'BAD_FILE', "tensor 'conv2.W_rho' holds Infinity at index 10", 'the file stores F16 bits 0x7c00');
    const bf16 = edited(file, (t) => {
      for (const x of Object.values(t)) x.dtype = 'BF16';
      t['fc2.bias_mu'].data[3] = NaN;
    });
    await refusedByLoader(bf16, 'BAD_FILE', "tensor 'fc2.bias_mu' holds NaN at index 3", 'the file stores BF16 bits 0x7fc0');
    const f64: Record<string, TensorEntry> = {};
    for (const [name, t] of file.tensors) f64[name] = { dtype: 'F64', shape: t.shape, data: Float64Array.from(t.data) };
    (f64['fc1.W_rho'].data as Float64Array)[7] = 1e300;
    await refusedByLoader(encodeSafetensors(f64, file.metadata), 'BAD_FILE', "tensor 'fc1.W_rho' holds Infinity at index 7", 'the F64 value 1e+300, beyond float32');
  });

  it('optimizer state: non-finite or negative moments, moments of non-parameters, missing moments and bad Adam metadata are refused', async () => {
    await refusedByLoader(edited(file, (t) => (t['optimizer.m.conv1.W_mu'].data[2] = NaN)), 'BAD_FILE', "tensor 'optimizer.m.conv1.W_mu' holds NaN at index 2");
    await refusedByLoader(edited(file, (t) => (t['optimizer.v.fc3.W_rho'].data[4] = -1)), 'BAD_FILE', "tensor 'optimizer.v.fc3.W_rho' holds -1 at index 4", 'never negative');
    await refusedByLoader(edited(file, (t) => (t['optimizer.m.fc9.weight'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) })), 'CHECKPOINT_MISMATCH', "'optimizer.m.fc9.weight' is optimizer state for 'fc9.weight', which is not a trainable parameter");
    await refusedByLoader(edited(file, (t) => (t['optimizer.m.fc3.bias_mu'] = { dtype: 'F32', shape: [3], data: new Float32Array(3) })), 'CHECKPOINT_MISMATCH', "'optimizer.m.fc3.bias_mu' has shape [3], its parameter has [2]");
    await refusedByLoader(edited(file, (t) => delete t['optimizer.v.conv2.bias_rho']), 'CHECKPOINT_MISMATCH', "tensor 'optimizer.v.conv2.bias_rho' is missing");
    await refusedByLoader(edited(file, (_, m) => delete m.optimizer), 'CHECKPOINT_MISMATCH', "holds optimizer state, but the file's metadata has no 'optimizer' entry");
    const adamMeta: [string, string][] = [
      ['{"kind":"adam","step":1', "the metadata 'optimizer' is not valid JSON"],
      ['null', "the metadata 'optimizer' is null, not an object"],
      ['{"kind":"sgd","step":1,"lr":0.1}', "kind \"sgd\"; only 'adam'"],
      ['{"step":1.5,"lr":0.1}', 'step 1.5, expected an integer >= 0'],
      ['{"step":-1,"lr":0.1}', 'step -1'],
      ['{"step":1,"lr":-0.1}', 'lr -0.1, expected a positive number'],
      ['{"step":1,"lr":"0.1"}', 'lr "0.1"'],
      ['{"step":1,"lr":0.1,"beta2":1}', 'beta2 1, expected a number in [0, 1)'],
      ['{"step":1,"lr":0.1,"eps":0}', 'eps 0'],
    ];
    for (const [text, part] of adamMeta) await refusedByLoader(edited(file, (_, m) => (m.optimizer = text)), 'BAD_FILE', part);
    const loaded = loadCheckpoint(ctx, edited(file, () => undefined));
    expect(loaded.optimizer).toEqual({ step: 3, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
    loaded.tensors.get('optimizer.v.fc1.W_mu')!.data[0] = -2;
    const live = ctx.memory().liveTensors;
    expectRefused(() => restoreOptimizer(ctx, loaded), 'BAD_FILE', "tensor 'optimizer.v.fc1.W_mu' holds -2 at index 0");
    expect(ctx.memory().liveTensors).toBe(live);
    loaded.model.dispose();
  });

  it('regression: a hostile config in the metadata is BAD_FILE (it threw TypeError or SyntaxError, or built another model)', async () => {
    const config = JSON.parse(file.metadata.config) as Record<string, unknown>;
    const withConfig = (patch: Record<string, unknown> | string) => edited(file, (_, m) => (m.config = typeof patch === 'string' ? patch : JSON.stringify({ ...config, ...patch })));
    const cases: [Record<string, unknown> | string, string][] = [
      ['{"model":', "the metadata 'config' is not valid JSON"],
      ['null', "the metadata 'config' is null, not an object"],
      ['[1]', 'is [1], not an object'],
      [{ model: 'vgg' }, "metadata 'config': argument 'model' expected one of 'lenet' | 'alexnet' | '3conv3fc' | 'resnet20', got \"vgg\""],
      [{ model: '__proto__' }, "argument 'model' expected one of"],
      [{ bayesian: 'yes' }, 'bayesian "yes", not true or false'],
      [{ layerType: 'dropconnect' }, "argument 'layerType'"],
      [{ classes: 0 }, "argument 'classes' expected an integer >= 1, got 0"],
      [{ inChannels: 1.5 }, "argument 'inChannels'"],
      [{ imageSize: -32 }, "argument 'imageSize'"],
      [{ imageSize: 8 }, 'whose feature maps vanish'],
      [{ priors: { prior_sigma: -1 } }, "argument 'priors.prior_sigma' expected a positive number, got -1"],
      [{ priors: 'wide' }, "argument 'priors' expected an object"],
      [{ bayesian: false, dropout: '0.5' }, 'dropout "0.5", not a number'],
      [{ bayesian: false, dropout: 1 }, "argument 'dropout' expected a probability in [0, 1)"],
    ];
    for (const [patch, part] of cases) await refusedByLoader(withConfig(patch), 'BAD_FILE', part);
  });

  it('regression: a config asking for more than the file holds is refused before anything is allocated', async () => {
    const config = JSON.parse(file.metadata.config) as Record<string, unknown>;
    const cases: [Record<string, unknown>, string][] = [
      [{ imageSize: 1_000_000 }, 'a model of 239994240060612 parameter values'],
      [{ classes: 1e9 }, 'a model of 170000029552 parameter values'],
      [{ inChannels: 2 ** 40 }, 'a model of 329853488362392 parameter values'],
      // Sizes beyond 2^53 are refused without a count (numbers are not exact there); the image size is printed exactly.
      [{ imageSize: 2 ** 60 }, '1152921504606846976x1152921504606846976 images, 2 classes), a model of more than 9007199254740991 parameter values'],
      [{ model: 'alexnet', imageSize: 32 }, 'a model of 4318852 parameter values'],
    ];
    for (const [patch, part] of cases) {
      const bytes = edited(file, (_, m) => (m.config = JSON.stringify({ ...config, ...patch })));
      const m = metered(() => loadCheckpoint(ctx, bytes));
      expect(m.largest, 'largest typed array allocated').toBeLessThanOrEqual(bytes.length);
      expectRefused(() => {
        throw m.error;
      }, 'CHECKPOINT_MISMATCH', "the file's metadata 'config' describe", part, `but the file's parameter tensors hold 29892`);
    }
  });

  it("names that are not the model's, missing tensors and wrong shapes are refused by name", async () => {
    await refusedByLoader(edited(file, (t) => (t['fc9.weight'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) })), 'CHECKPOINT_MISMATCH', "tensor 'fc9.weight' in the file is not a parameter of the model (lenet)");
    await refusedByLoader(edited(file, (t) => {
      t['conv1.W_MU'] = t['conv1.W_mu'];
      delete t['conv1.W_mu'];
    }), 'CHECKPOINT_MISMATCH', "tensor 'conv1.W_mu' is missing from the file (the model expects shape [6, 1, 5, 5])");
    await refusedByLoader(edited(file, (t) => (t['fc2.W_mu'].shape = [84, 2, 60])), 'CHECKPOINT_MISMATCH', "tensor 'fc2.W_mu' has shape [84, 2, 60], the model expects [84, 120]");
    await refusedByLoader(edited(file, (t) => (t[''] = { dtype: 'F32', shape: [], data: new Float32Array(1) })), 'CHECKPOINT_MISMATCH', "tensor '' in the file is not a parameter");
  });

  it('regression: loadStateDict checks every value count before writing (it wrote the tensors before a short one)', async () => {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, t] of file.tensors) tensors.set(name, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(0.5) });
    tensors.get('fc3.bias_rho')!.data = new Float32Array(1);
    expectRefused(() => loadStateDict(model, tensors), 'CHECKPOINT_MISMATCH', "tensor 'fc3.bias_rho' holds 1 values, its shape [2] needs 2");
    tensors.get('fc3.bias_rho')!.data = new Float32Array(2);
    tensors.get('fc3.W_mu')!.data = 'not numbers' as unknown as Float32Array;
    expectRefused(() => loadStateDict(model, tensors), 'CHECKPOINT_MISMATCH', "tensor 'fc3.W_mu' has data \"String\", not an array of numbers");
    await expectUnchanged(model, before);
  });

  it('a file without metadata still needs the model named, and its options are checked', async () => {
    const plain = LeNet(ctx, { imageSize: 16, classes: 2 });
    const tensors: Record<string, TensorEntry> = {};
    for (const [name, p] of plain.namedParameters()) tensors[name] = { dtype: 'F32', shape: [...p.value.shape], data: (await p.value.read()) as Float32Array };
    const bytes = encodeSafetensors(tensors);
    await refusedByLoader(bytes, 'INVALID_ARGUMENT', "argument 'model' must name the architecture");
    expectRefused(() => loadCheckpoint(ctx, bytes, { model: 'lenet', imageSize: 0 }), 'INVALID_ARGUMENT', "argument 'imageSize'");
    expectRefused(() => loadCheckpoint(ctx, bytes, { model: 'lenet' }), 'CHECKPOINT_MISMATCH', 'the options describe lenet (1 input channels, 32x32 images, 2 classes)');
    const loaded = loadCheckpoint(ctx, bytes, { model: 'lenet', imageSize: 16 });
    await expectUnchanged(loaded.model, await params(plain));
    loaded.model.dispose();
    plain.dispose();
  });
});
