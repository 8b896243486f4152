/**
 * A seeded, reproducible attack on the checkpoint loader: 10,500 mutated,
 * truncated, spliced and generated files fed to decodeSafetensors (CPU only)
 * and to loadCheckpoint / loadStateDict on a small Bayesian and a small
 * frequentist LeNet (16x16 inputs, 2 classes), and to loadModel on a saveModel
 * file ('bayesgpu/2') of a small network with a Residual block. Every case must end in a
 * BayesError with a code, or in a load that an independent reading of the
 * file confirms; within a second; with the decoder allocating nothing for a
 * refused file and only the data section for an accepted one; with a refused
 * load leaving no GPU tensor behind and the target model unchanged.
 *
 * Case i draws from rng(SEED + i), so a failure prints the one case to replay.
 * Failures found while writing this are kept as named regressions in hostile.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { context, rng } from '../helpers.js';
import { BayesError, type BayesErrorCode } from '../../src/errors.js';
import {
  type DecodedSafetensors, type SafetensorsDType, type TensorEntry, DTYPE_SIZE, decodeSafetensors, encodeSafetensors, rawValues,
} from '../../src/io/safetensors.js';
import { loadCheckpoint, loadModel, loadStateDict, saveCheckpoint, saveModel } from '../../src/io/checkpoint.js';
import { BBBLeNet, LeNet } from '../../src/nn/models.js';
import { Adam } from '../../src/train/adam.js';
import type { Context } from '../../src/gpu/context.js';
import { Residual, Sequential } from '../../src/nn/sequential.js';
import { BatchNorm2d, Conv2d, Flatten, ReLU } from '../../src/nn/layers.js';
import { BBBLinear } from '../../src/nn/bayes.js';
import { metered } from './hostile_files.js';

const SEED = 0x5afe7e45;
const DECODE_CASES = 9000;
const VALID_CASES = 1000;
const MODEL_CASES = 500;
const SLOWEST_ALLOWED_MS = 1000;

type Rand = ReturnType<typeof makeRand>;
function makeRand(seed: number) {
  const next = rng(seed);
  const int = (n: number) => Math.floor(next() * n);
  return {
    next, int,
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]): T => items[int(items.length)],
  };
}

const text = new TextDecoder();
const encoder = new TextEncoder();
const DTYPES = Object.keys(DTYPE_SIZE) as SafetensorsDType[];

interface Parsed {
  headerLength: number;
  header: Record<string, unknown>;
  data: Uint8Array;
}

/** An independent reading of a file this suite generated from a valid base (JSON.parse: fine for files known to be valid). */
function parse(bytes: Uint8Array): Parsed {
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  return { headerLength, header: JSON.parse(text.decode(bytes.subarray(8, 8 + headerLength))), data: bytes.subarray(8 + headerLength) };
}

/** A file from header text and data; `raw` maps placeholders "@@n@@" in the text to verbatim JSON (huge numbers, NaN, ...). */
function build(headerText: string, data: Uint8Array, raw: string[] = [], pad = false): Uint8Array {
  let json = headerText.replace(/"@@(\d+)@@"/g, (_, i: string) => raw[Number(i)]);
  if (pad) json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const head = encoder.encode(json);
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

const HOSTILE_TOKENS = [
  '0', '1', '-1', '-0', '0.5', '1e2', '8.0', '1e400', '-1e400', '4294967296', '9007199254740992', '9007199254740993',
  '18446744073709551615', '18446744073709551616', '340282366920938463463374607431768211456', 'NaN', 'Infinity', '-Infinity',
  'null', 'true', 'false', '"3"', '""', '[]', '{}', '[1,2]', '{"a":1}', '[[[[[[]]]]]]', '"F32"', '01', '1e-7',
];

/** One structural change to a valid header: the kind of damage a broken writer or an attacker makes. */
function mutateHeader(r: Rand, parsed: Parsed): { bytes: Uint8Array; what: string } {
  const header = structuredClone(parsed.header) as Record<string, Record<string, unknown>>;
  const names = Object.keys(header).filter((n) => n !== '__metadata__');
  const raw: string[] = [];
  const token = (t = r.pick(HOSTILE_TOKENS)) => {
    raw.push(t);
    return `@@${raw.length - 1}@@`;
  };
  let data = parsed.data;
  const name = names.length ? r.pick(names) : null;
  const e = name ? header[name] : null;
  const offsets = e ? (e.data_offsets as number[]) : null;
  const ops: [string, () => void][] = [
    ['dtype', () => e && (e.dtype = r.chance(0.5) ? r.pick(DTYPES) : r.chance(0.5) ? r.pick(['F8_E4M3', 'f32', '', 'F32 ', 'I4', 'complex64']) : token())],
    ['shape-dim', () => {
      const s = e?.shape as unknown[] | undefined;
      if (s && s.length) s[r.int(s.length)] = r.chance(0.5) ? (s[r.int(s.length)] as number) * r.pick([0, 2, 3, 1024]) + r.pick([0, 1]) : token();
    }],
    ['shape-rank', () => e && (e.shape = r.chance(0.3) ? [] : r.chance(0.3) ? Array(65 + r.int(3)).fill(1) : [...(e.shape as number[]), r.pick([1, 2, 0])])],
    ['shape-type', () => e && (e.shape = token())],
    ['offsets-shift', () => {
      if (!offsets) return;
      const k = r.pick([1, 2, 4, 8, -1, -4]);
      if (r.chance(0.5)) offsets[r.int(2)] += k;
      else offsets.forEach((_, i) => (offsets[i] += k));
    }],
    ['offsets-hostile', () => offsets && ((offsets as unknown[])[r.int(2)] = token())],
    ['offsets-swap', () => offsets && offsets.reverse()],
    ['offsets-overlap', () => {
      const other = names.length > 1 ? header[r.pick(names)] : null;
      if (e && other) e.data_offsets = [...(other.data_offsets as number[])];
    }],
    ['offsets-beyond', () => offsets && (offsets[1] = parsed.data.length + r.pick([1, 8, 4096, 2 ** 40]))],
    ['offsets-arity', () => e && (e.data_offsets = r.chance(0.5) ? [0] : [0, 4, 8])],
    ['entry-key', () => {
      if (!e) return;
      if (r.chance(0.5)) delete e[r.pick(['dtype', 'shape', 'data_offsets'])];
      else e[r.pick(['extra', 'DTYPE', 'offsets', ''])] = token();
    }],
    ['entry-type', () => name && ((header as Record<string, unknown>)[name] = token())],
    ['rename', () => {
      if (!name) return;
      const to = r.pick(['', '__proto__', 'constructor', 'n'.repeat(5000), 'conv1.W_mu ', 'fc9.weight', 'optimizer.m.fc9.weight', '\u2028\ud83d\ude00', '__metadata__']);
      if (to in header) return;
      header[to] = header[name];
      delete header[name];
    }],
    ['drop-tensor', () => name && delete header[name]],
    ['add-tensor', () => {
      const size = r.pick([1, 4, 8]);
      header[`extra${r.int(9)}`] = { dtype: r.pick(['U8', 'F32', 'F64']), shape: [size / 1], data_offsets: [data.length, data.length + size * (r.chance(0.5) ? 1 : 4)] };
      if (r.chance(0.7)) {
        const grown = new Uint8Array(data.length + size * r.pick([1, 4, 8]));
        grown.set(data);
        data = grown;
      }
    }],
    ['metadata-value', () => {
      const m = (header.__metadata__ ??= {}) as Record<string, unknown>;
      m[r.chance(0.5) ? r.pick(Object.keys(m).concat('k')) : `k${r.int(5)}`] = token();
    }],
    ['metadata-type', () => ((header as Record<string, unknown>).__metadata__ = token())],
    ['metadata-huge', () => {
      const m = (header.__metadata__ ??= {}) as Record<string, unknown>;
      if (r.chance(0.5)) m.blob = 'x'.repeat(r.pick([1 << 16, 1 << 20]));
      else for (let i = 0; i < r.pick([1000, 300_000]); i++) m[`k${i}`] = '';
    }],
    ['top-type', () => {
      for (const k of Object.keys(header)) delete header[k];
      (header as Record<string, unknown>)[''] = token();
    }],
  ];
  const [what, op] = r.pick(ops);
  op();
  let json = JSON.stringify(header);
  // Duplicates cannot be written through an object: splice them into the text.
  if (r.chance(0.08) && name) {
    const member = `${JSON.stringify(name)}:${JSON.stringify(parsed.header[name])}`;
    json = `{${member},${json.slice(1)}`;
    return { bytes: build(json, data, raw, r.chance(0.5)), what: `${what}+duplicate-name` };
  }
  if (r.chance(0.04) && name) {
    json = json.replace(`${JSON.stringify(name)}:{`, `${JSON.stringify(name)}:{"dtype":${JSON.stringify(r.pick(DTYPES))},`);
    return { bytes: build(json, data, raw), what: `${what}+duplicate-key` };
  }
  return { bytes: build(json, data, raw, r.chance(0.5)), what };
}

const HOSTILE_LENGTHS = [0n, 1n, 2n, 7n, 8n, 2n ** 31n, 2n ** 32n, 2n ** 32n + 16n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 63n + 1n, 2n ** 64n - 1n];

/** A damaged copy of `base`: byte flips, JSON-ish characters, truncation, extension, a hostile length field, text inserted or cut, a splice, or a structural header change. */
function mutate(r: Rand, base: Uint8Array, other: Uint8Array): { bytes: Uint8Array; what: string; dataOnly?: boolean } {
  const parsed = parse(base);
  const headerEnd = 8 + parsed.headerLength;
  const copy = () => base.slice();
  const kind = r.int(100);
  if (kind < 12) {
    const b = copy();
    const n = 1 + r.int(8);
    for (let i = 0; i < n; i++) b[r.chance(0.8) ? r.int(headerEnd) : r.int(b.length)] ^= 1 << r.int(8);
    return { bytes: b, what: `flip ${n} bits` };
  }
  if (kind < 24) {
    const b = copy();
    const n = 1 + r.int(3);
    for (let i = 0; i < n; i++) b[8 + r.int(parsed.headerLength)] = '{}[]":,0123456789-+.eE\\ \u0000\n'.charCodeAt(r.int(26)) || 0;
    return { bytes: b, what: `JSON characters x${n}` };
  }
  if (kind < 32) {
    const at = r.chance(0.5) ? r.int(headerEnd + 1) : r.int(base.length);
    return { bytes: base.slice(0, at), what: `truncated to ${at}` };
  }
  if (kind < 36) {
    const extra = new Uint8Array(1 + r.int(64)).map(() => (r.chance(0.5) ? 0 : r.int(256)));
    const b = new Uint8Array(base.length + extra.length);
    b.set(base);
    b.set(extra, base.length);
    return { bytes: b, what: `extended by ${extra.length}` };
  }
  if (kind < 46) {
    const b = copy();
    const choices = [...HOSTILE_LENGTHS, BigInt(parsed.headerLength + r.pick([-9, -8, -1, 1, 8])), BigInt(base.length - 8 + r.pick([0, 1, 2])), BigInt(r.int(2 ** 31)) * 2n ** 32n + BigInt(r.int(2 ** 32))];
    const length = r.pick(choices);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, length), true);
    return { bytes: b, what: `length field ${BigInt.asUintN(64, length)}` };
  }
  if (kind < 52) {
    // Text inserted into or cut from the header, with the length field kept true, so the JSON parser sees it.
    const head = text.decode(base.subarray(8, headerEnd));
    const at = r.int(head.length + 1);
    const edited = r.chance(0.5) ? head.slice(0, at) + r.pick(HOSTILE_TOKENS.concat([',', ':', '{', '}', '[', ']', '"', '\\', ',"x":1'])) + head.slice(at) : head.slice(0, at) + head.slice(at + 1 + r.int(6));
    return { bytes: build(edited, parsed.data), what: 'header text edited' };
  }
  if (kind < 58) {
    const b = copy();
    const n = 1 + r.int(16);
    if (b.length > headerEnd) for (let i = 0; i < n; i++) b[headerEnd + r.int(b.length - headerEnd)] = r.int(256);
    return { bytes: b, what: 'data bytes changed', dataOnly: b.length > headerEnd };
  }
  if (kind < 62) {
    const o = parse(other);
    return { bytes: build(text.decode(base.subarray(8, headerEnd)), o.data), what: 'header of one file, data of another' };
  }
  return mutateHeader(r, parsed);
}

/** Checks an accepted file against an independent reading: every tensor, its bytes, the metadata, the tiling. */
function confirm(bytes: Uint8Array, decoded: DecodedSafetensors): string | null {
  const { header, data } = parse(bytes);
  const names = Object.keys(header).filter((n) => n !== '__metadata__');
  if (names.length !== decoded.tensors.size) return `${names.length} tensors in the header, ${decoded.tensors.size} decoded`;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  if (JSON.stringify(Object.entries(metadata)) !== JSON.stringify(Object.entries(decoded.metadata))) return 'metadata differs';
  let covered = 0;
  for (const name of names) {
    const h = header[name] as { dtype: SafetensorsDType; shape: number[]; data_offsets: [number, number] };
    const t = decoded.tensors.get(name);
    if (!t) return `tensor '${name}' missing`;
    if (t.dtype !== h.dtype || JSON.stringify(t.shape) !== JSON.stringify(h.shape)) return `tensor '${name}': dtype or shape differs`;
    const [begin, end] = h.data_offsets;
    if (t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype] !== end - begin) return `tensor '${name}': size disagrees with its offsets`;
    if (!Buffer.from(t.raw).equals(Buffer.from(data.subarray(begin, end)))) return `tensor '${name}': bytes differ from the file`;
    if (t.data.length !== t.shape.reduce((a, b) => a * b, 1)) return `tensor '${name}': data length`;
    covered += end - begin;
  }
  if (covered !== data.length) return `tensors cover ${covered} of ${data.length} data bytes`;
  return null;
}

interface Tally {
  cases: number;
  accepted: number;
  refused: Partial<Record<BayesErrorCode, number>>;
  slowestMs: number;
  failures: string[];
}

function tally(): Tally {
  return { cases: 0, accepted: 0, refused: {}, slowestMs: 0, failures: [] };
}

function fail(t: Tally, id: string, what: string, why: string): void {
  if (t.failures.length < 20) t.failures.push(`${id} (${what}): ${why}`);
}

/** One decodeSafetensors case: a BayesError BAD_FILE allocating nothing, or an accepted file that `confirm` agrees with. */
function decodeCase(t: Tally, id: string, what: string, bytes: Uint8Array, mustAccept: boolean): DecodedSafetensors | null {
  t.cases++;
  const start = performance.now();
  const m = metered(() => decodeSafetensors(bytes));
  const ms = performance.now() - start;
  t.slowestMs = Math.max(t.slowestMs, ms);
  if (ms > SLOWEST_ALLOWED_MS) fail(t, id, what, `took ${ms.toFixed(0)} ms`);
  if (m.error !== undefined) {
    const e = m.error;
    if (!(e instanceof BayesError)) return fail(t, id, what, `threw ${String(e)}`), null;
    t.refused[e.code] = (t.refused[e.code] ?? 0) + 1;
    if (e.code !== 'BAD_FILE' || !e.message.startsWith('decodeSafetensors: ')) fail(t, id, what, `refused with ${e.code}: ${e.message}`);
    if (e.message.length > 1000) fail(t, id, what, `a message of ${e.message.length} characters`);
    if (m.total !== 0) fail(t, id, what, `allocated ${m.total} bytes before refusing`);
    if (mustAccept) fail(t, id, what, `a valid file refused: ${e.message}`);
    return null;
  }
  t.accepted++;
  const decoded = m.result!;
  const dataLength = bytes.length - 8 - parse(bytes).headerLength;
  if (m.total !== dataLength) fail(t, id, what, `allocated ${m.total} bytes for a ${dataLength}-byte data section`);
  const wrong = confirm(bytes, decoded);
  if (wrong) fail(t, id, what, `accepted, but ${wrong}`);
  return decoded;
}

/** A random valid file, written by the library's encoder or by hand (any key order, offsets in any order, padded or not). */
function randomValidFile(r: Rand): { bytes: Uint8Array; tensors: Record<string, TensorEntry>; metadata: Record<string, string> } {
  const tensors: Record<string, TensorEntry> = {};
  const count = r.int(7);
  for (let i = 0; i < count; i++) {
    const dtype = r.pick(DTYPES);
    const shape = Array.from({ length: r.int(4) }, () => r.int(5));
    const n = shape.reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(n * DTYPE_SIZE[dtype]).map(() => r.int(256)); // any bits: NaNs, infinities, subnormals
    if (dtype === 'BOOL') bytes.forEach((_, j) => (bytes[j] = r.int(2)));
    const Ctor = { F64: Float64Array, F32: Float32Array, F16: Uint16Array, BF16: Uint16Array, I64: BigInt64Array, U64: BigUint64Array, I32: Int32Array, U32: Uint32Array, I16: Int16Array, U16: Uint16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array }[dtype];
    tensors[r.pick(['w', 'conv1.W_mu', 'é', '__proto__', '', 'a b', `t${i}`]) + (r.chance(0.5) ? i : '')] = { dtype, shape, data: new Ctor(bytes.buffer) };
  }
  const metadata: Record<string, string> = {};
  for (let i = r.int(4); i > 0; i--) metadata[r.pick(['format', 'epoch', '', 'ü', '__proto__', `k${i}`])] = r.pick(['', 'bayesgpu/1', '3', '\u0000\n"\\', 'x'.repeat(100)]);
  const useMetadata = Object.keys(metadata).length > 0 || r.chance(0.2);
  if (r.chance(0.5)) return { bytes: encodeSafetensors(tensors, useMetadata ? metadata : undefined), tensors, metadata };
  // By hand: entries shuffled, data in another shuffled order.
  const entries = Object.entries(tensors);
  const order = entries.map((_, i) => i).sort(() => r.next() - 0.5);
  const chunks: Uint8Array[] = [];
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const i of order) {
    const [name, t] = entries[i];
    const b = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { data_offsets: [offset, offset + b.length], shape: t.shape, dtype: t.dtype };
    chunks.push(b);
    offset += b.length;
  }
  const members = Object.entries(header).sort(() => r.next() - 0.5).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  if (useMetadata) members.splice(r.int(members.length + 1), 0, `"__metadata__":${JSON.stringify(metadata)}`);
  const data = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return { bytes: build(`{${members.join(r.pick([',', ', ', ',\n']))}}`, data, [], r.chance(0.5)), tensors, metadata };
}

async function readParams(model: Sequential): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) out.set(name, (await p.value.read()) as Float32Array);
  return out;
}

function sameParams(a: Map<string, Float32Array>, b: Map<string, Float32Array>): string | null {
  for (const [name, v] of a) if (!Buffer.from(b.get(name)!.buffer).equals(Buffer.from(v.buffer))) return name;
  return null;
}

describe('fuzz: seeded hostile files', async () => {
  const ctx = await context();
  // Two small models and checkpoints of them: Bayesian with Adam state (bayesgpu metadata), frequentist without metadata.
  const bayes = BBBLeNet(ctx, { imageSize: 16, classes: 2, seed: 11 });
  const adam = new Adam(bayes, { lr: 1e-3 });
  for (const s of adam.state.values()) {
    ctx.write(s.m, Float32Array.from({ length: s.m.size }, (_, i) => Math.sin(i) / 10));
    ctx.write(s.v, Float32Array.from({ length: s.v.size }, (_, i) => (1 + Math.cos(i)) / 100));
  }
  adam.step = 7;
  const bayesFile = await saveCheckpoint(bayes, { optimizer: adam });
  adam.dispose();
  const plain = LeNet(ctx, { imageSize: 16, classes: 2, seed: 12 });
  const plainTensors: Record<string, TensorEntry> = {};
  for (const [name, p] of plain.namedParameters()) plainTensors[name] = { dtype: 'F32', shape: [...p.value.shape], data: (await p.value.read()) as Float32Array };
  const plainFile = encodeSafetensors(plainTensors);
  const small = encodeSafetensors({
    'conv1.W_mu': { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 0, -0, 1e-40) },
    half: { dtype: 'F16', shape: [4], data: Float32Array.of(1, 65504, -0.5, 2 ** -24) },
    brain: { dtype: 'BF16', shape: [3], data: Float32Array.of(3.14, -1, 1e30) },
    wide: { dtype: 'F64', shape: [2], data: Float64Array.of(Math.PI, -1e-300) },
    steps: { dtype: 'I64', shape: [], data: BigInt64Array.of(-5n) },
    bytes: { dtype: 'U8', shape: [5], data: Uint8Array.of(0, 1, 2, 254, 255) },
    mask: { dtype: 'BOOL', shape: [2], data: Uint8Array.of(1, 0) },
    empty: { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
  }, { format: 'bayesgpu/1', epoch: '3' });
  const unpadded = build('{"b":{"data_offsets":[8,12],"dtype":"I32","shape":[1]},"__metadata__":{"a":"1"},"a":{"shape":[2],"dtype":"F32","data_offsets":[0,8]}}', new Uint8Array(12).fill(7));
  const bases = [small, unpadded, bayesFile, plainFile];
  // A network of its own (conv, Residual block with BatchNorm and a projection shortcut, BBBLinear), saved with its architecture.
  const residualNet = () => new Sequential(ctx, {
    conv1: new Conv2d(1, 3, 3, { padding: 1 }),
    block: new Residual(new Sequential({ conv: new Conv2d(3, 4, 3, { stride: 2, padding: 1 }), bn: new BatchNorm2d(4), act: new ReLU() }), { shortcut: new Conv2d(3, 4, 1, { stride: 2 }) }),
    flatten: new Flatten(),
    fc: new BBBLinear(null, 2),
  }, { inputShape: [1, 8, 8], classNames: ['a', 'b'] });
  const residual = residualNet();
  const residualAdam = new Adam(residual, { lr: 1e-3 });
  const residualFile = await saveModel(residual, { optimizer: residualAdam, metadata: { epoch: '1' } });
  residualAdam.dispose();

  it(`decodeSafetensors: ${DECODE_CASES} damaged files and ${VALID_CASES} random valid ones`, () => {
    const t = tally();
    const started = performance.now();
    for (let i = 0; i < DECODE_CASES; i++) {
      const r = makeRand(SEED + i);
      // The big model files are slower to copy: a quarter of the cases use them.
      const base = r.chance(0.75) ? r.pick([small, unpadded]) : r.pick([bayesFile, plainFile]);
      const { bytes, what, dataOnly } = mutate(r, base, r.pick(bases));
      decodeCase(t, `decode case ${i}`, what, bytes, dataOnly === true);
    }
    // Pools share one buffer: every view must read its own bytes.
    decodeCase(t, 'decode Buffer', 'a pooled Node Buffer', Buffer.from(small), true);
    for (let i = 0; i < VALID_CASES; i++) {
      const r = makeRand(SEED + DECODE_CASES + i);
      const { bytes, tensors, metadata } = randomValidFile(r);
      const id = `valid case ${DECODE_CASES + i}`;
      const decoded = decodeCase(t, id, 'a random valid file', bytes, true);
      if (!decoded) continue;
      for (const [name, want] of Object.entries(tensors)) {
        const got = decoded.tensors.get(name)!;
        const a = rawValues(got);
        const bitsA = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
        const bitsB = new Uint8Array(want.data.buffer, want.data.byteOffset, want.data.byteLength);
        if (!Buffer.from(bitsA).equals(Buffer.from(bitsB))) fail(t, id, 'valid', `tensor '${name}' came back different`);
      }
      if (JSON.stringify(Object.entries(decoded.metadata).sort()) !== JSON.stringify(Object.entries(Object.keys(metadata).length ? metadata : {}).sort())) fail(t, id, 'valid', 'metadata came back different');
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`fuzz decode: ${t.cases} cases in ${seconds.toFixed(1)} s, ${t.accepted} accepted, refused ${JSON.stringify(t.refused)}, slowest ${t.slowestMs.toFixed(1)} ms`);
    expect(t.failures).toEqual([]);
    expect(t.cases).toBe(DECODE_CASES + VALID_CASES + 1);
    expect(t.slowestMs).toBeLessThan(SLOWEST_ALLOWED_MS);
    // Sanity of the campaign itself: it reaches both outcomes and many different refusals.
    expect(t.accepted).toBeGreaterThan(VALID_CASES + 500);
    expect(t.refused.BAD_FILE).toBeGreaterThan(DECODE_CASES / 2);
  });

  it(`loadCheckpoint and loadStateDict: ${MODEL_CASES} damaged checkpoints of two small models`, async () => {
    const t = tally();
    const started = performance.now();
    const bayesDecoded = decodeSafetensors(bayesFile);
    const plainDecoded = decodeSafetensors(plainFile);
    // loadStateDict first tries each file on a twin; only files the twin refuses go to the target, which must refuse them too and never change.
    const targets = {
      bayes: { file: bayesFile, decoded: bayesDecoded, twin: BBBLeNet(ctx, { imageSize: 16, classes: 2, seed: 1 }), target: bayes, options: {} },
      plain: { file: plainFile, decoded: plainDecoded, twin: LeNet(ctx, { imageSize: 16, classes: 2, seed: 2 }), target: plain, options: { model: 'lenet' as const, imageSize: 16 } },
      residual: { file: residualFile, decoded: decodeSafetensors(residualFile), twin: residualNet(), target: residual, options: null },
    };
    const original = { bayes: await readParams(bayes), plain: await readParams(plain), residual: await readParams(residual) };
    let checkedUnchanged = 0;
    let targetRefusals = 0;
    for (let i = 0; i < MODEL_CASES; i++) {
      const r = makeRand(SEED + 100_000 + i);
      const which = r.chance(0.5) ? 'bayes' : r.chance(0.5) ? 'residual' : 'plain';
      const { file, decoded, twin, target, options } = targets[which];
      const { bytes, what, poisoned } = damageCheckpoint(r, file, decoded);
      const id = `model case ${100_000 + i} (${which})`;
      t.cases++;
      const live = ctx.memory().liveTensors;
      ctx.resetPeak();
      const peakBefore = ctx.memory().peakLiveBytes;
      const start = performance.now();
      // The 'bayesgpu/2' file through the public loader; the others through the internal one, which takes the options.
      const m = metered(() => (options === null ? { model: loadModel(ctx, bytes) } : loadCheckpoint(ctx, bytes, options)));
      const ms = performance.now() - start;
      t.slowestMs = Math.max(t.slowestMs, ms);
      if (ms > SLOWEST_ALLOWED_MS) fail(t, id, what, `took ${ms.toFixed(0)} ms`);
      const gpuBytes = ctx.memory().peakLiveBytes - peakBefore;
      if (gpuBytes > 4 * bytes.length) fail(t, id, what, `${gpuBytes} GPU bytes for a ${bytes.length}-byte file`);
      if (m.largest > 4 * bytes.length) fail(t, id, what, `a ${m.largest}-byte allocation for a ${bytes.length}-byte file`);
      if (m.error !== undefined) {
        const e = m.error;
        if (!(e instanceof BayesError)) {
          fail(t, id, what, `threw ${String(e)}`);
          continue;
        }
        t.refused[e.code] = (t.refused[e.code] ?? 0) + 1;
        if (!['BAD_FILE', 'CHECKPOINT_MISMATCH'].includes(e.code)) fail(t, id, what, `refused with ${e.code}: ${e.message}`);
        if (ctx.memory().liveTensors !== live) fail(t, id, what, `left ${ctx.memory().liveTensors - live} GPU tensors behind`);
        if (poisoned && e.code === 'BAD_FILE' && /tensor '[^']+' holds/.test(e.message)) {
          const [, name, index] = /tensor '([^']+)' holds .* at index (\d+)/.exec(e.message) ?? [];
          const want = poisoned.get(name);
          if (want === undefined || Number(index) !== want) fail(t, id, what, `named ${name} index ${index}, the first poisoned value there is ${want}`);
        }
      } else {
        t.accepted++;
        const loaded = m.result!;
        if (poisoned && poisoned.size) fail(t, id, what, `loaded a file with non-finite values in ${[...poisoned.keys()].join(', ')}`);
        if (i % 5 === 0) {
          // The loaded parameters are the file's values (converted to float32 when stored otherwise).
          const got = await readParams(loaded.model);
          const want = decodeSafetensors(bytes).tensors;
          for (const [name, v] of got) if (!Buffer.from(v.buffer).equals(Buffer.from(want.get(name)!.data.buffer))) fail(t, id, what, `parameter ${name} differs from the file`);
        }
        loaded.model.dispose();
      }
      // loadStateDict on the twin, then (if refused) on the target.
      let tensors: DecodedSafetensors['tensors'] | null = null;
      try {
        tensors = decodeSafetensors(bytes).tensors;
      } catch {
        continue; // a file the decoder refuses never reaches a model
      }
      const stateDict = new Map([...tensors].map(([name, x]) => [name, { shape: x.shape, data: x.data }]));
      const onTwin = attempt(() => loadStateDict(twin, stateDict));
      if (onTwin === null) continue;
      if (!(onTwin instanceof BayesError)) {
        fail(t, id, what, `loadStateDict threw ${String(onTwin)}`);
        continue;
      }
      const onTarget = attempt(() => loadStateDict(target, stateDict));
      targetRefusals++;
      if (!(onTarget instanceof BayesError) || onTarget.message !== onTwin.message) fail(t, id, what, `the target did not refuse like its twin: ${String(onTarget)}`);
      if (targetRefusals % 8 === 0) {
        checkedUnchanged++;
        const changed = sameParams(original[which], await readParams(target));
        if (changed) fail(t, id, what, `a refused loadStateDict changed parameter ${changed}`);
      }
    }
    for (const which of ['bayes', 'plain', 'residual'] as const) {
      const changed = sameParams(original[which], await readParams(targets[which].target));
      if (changed) fail(t, 'after all cases', which, `a refused loadStateDict changed parameter ${changed}`);
      targets[which].twin.dispose();
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`fuzz load: ${t.cases} cases in ${seconds.toFixed(1)} s, ${t.accepted} loaded, refused ${JSON.stringify(t.refused)}, slowest ${t.slowestMs.toFixed(1)} ms; loadStateDict refusals on the target: ${targetRefusals}, ${checkedUnchanged} read back`);
    expect(t.failures).toEqual([]);
    expect(t.slowestMs).toBeLessThan(SLOWEST_ALLOWED_MS);
    expect(t.accepted).toBeGreaterThan(MODEL_CASES / 10);
    expect(t.refused.BAD_FILE! + t.refused.CHECKPOINT_MISMATCH!).toBeGreaterThan(MODEL_CASES / 2);
    expect(targetRefusals).toBeGreaterThan(MODEL_CASES / 5);
  });
});

function attempt(fn: () => void): unknown {
  try {
    fn();
    return null;
  } catch (e) {
    return e;
  }
}

/**
 * A damaged checkpoint: non-finite values injected (`poisoned`: tensor -> first
 * bad index), tensors converted to F16/BF16/F64 (valid), renamed, dropped,
 * added or reshaped, the config or Adam metadata changed, or the bytes damaged.
 */
function damageCheckpoint(r: Rand, file: Uint8Array, decoded: DecodedSafetensors): { bytes: Uint8Array; what: string; poisoned?: Map<string, number> } {
  const kind = r.int(100);
  if (kind < 20) return mutate(r, file, file);
  const tensors: Record<string, TensorEntry & { data: Float32Array | Float64Array }> = {};
  for (const [name, t] of decoded.tensors) tensors[name] = { dtype: 'F32', shape: [...t.shape], data: Float32Array.from(t.data) };
  const metadata = { ...decoded.metadata };
  const names = Object.keys(tensors);
  const poisoned = new Map<string, number>();
  let what: string;
  if (kind < 45) {
    what = 'non-finite values';
    for (let k = 1 + r.int(3); k > 0; k--) {
      const name = r.pick(names);
      const t = tensors[name];
      if (!t.data.length) continue;
      const index = r.int(t.data.length);
      t.data[index] = r.pick([NaN, Infinity, -Infinity]);
      poisoned.set(name, Math.min(index, poisoned.get(name) ?? Infinity));
    }
  } else if (kind < 60) {
    const dtype = r.pick(['F16', 'BF16', 'F64'] as const);
    what = `converted to ${dtype}`;
    for (const t of Object.values(tensors)) {
      if (!r.chance(0.6)) continue;
      t.dtype = dtype;
      if (dtype === 'F64') t.data = Float64Array.from(t.data);
    }
    if (r.chance(0.3)) {
      // a value beyond binary16 (inf after conversion) or an F64 beyond float32
      const name = r.pick(names);
      const t = tensors[name];
      if (t.data.length) {
        const index = r.int(t.data.length);
        t.dtype = r.chance(0.5) ? 'F16' : 'F64';
        t.data = t.dtype === 'F64' ? Float64Array.from(t.data) : Float32Array.from(t.data);
        t.data[index] = t.dtype === 'F16' ? 1e6 : -1e300;
        poisoned.set(name, index);
        what += `, ${t.dtype} overflow`;
      }
    }
  } else if (kind < 75) {
    const name = r.pick(names);
    const op = r.pick(['rename', 'drop', 'add', 'reshape', 'optimizer-orphan']);
    what = `${op} ${name}`;
    if (op === 'rename') {
      tensors[r.pick([`${name}_`, name.toUpperCase(), name.replace('.', '/'), `module.${name}`])] = tensors[name];
      delete tensors[name];
    } else if (op === 'drop') delete tensors[name];
    else if (op === 'add') tensors[r.pick(['fc9.weight', 'conv1.W_sigma', 'optimizer.m.fc9.W_mu', 'optimizer.v.fc1.W_mu', 'bn.num_batches_tracked'])] = { dtype: 'F32', shape: [3], data: new Float32Array(3) };
    else if (op === 'reshape') tensors[name].shape = [tensors[name].data.length];
    else tensors[`optimizer.m.${name}`] = { dtype: 'F32', shape: [...tensors[name].shape], data: new Float32Array(tensors[name].data.length) };
  } else {
    const key = r.pick(['config', 'optimizer', 'format', 'architecture', 'architecture', 'modelOptions']);
    what = `metadata ${key}`;
    if (metadata[key] === undefined || r.chance(0.2)) metadata[key] = r.pick(['', '{', 'null', '[]', '3', '"x"', '{}']);
    else if (key === 'format') metadata.format = r.pick(['pt', 'bayesgpu/1', 'bayesgpu/2', 'bayesgpu/3', '']);
    else {
      // Any object of the JSON tree (a layer config deep in the architecture, a preprocessing entry, ...).
      const objects: Record<string, unknown>[] = [];
      const walk = (v: unknown) => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v !== null && typeof v === 'object') {
          objects.push(v as Record<string, unknown>);
          Object.values(v).forEach(walk);
        }
      };
      const root = JSON.parse(metadata[key]) as Record<string, unknown>;
      walk(root);
      const value = r.pick(objects);
      const field = r.pick(Object.keys(value).concat('extra'));
      value[field] = r.pick([null, -1, 0, 0.5, 1, 2, 16, 1e9, 2 ** 40, 1e308, -1e308, 'relu', 'bbb', 'lenet', 'alexnet', '3conv3fc', true, false, [], {}, [1, 2], { prior_sigma: -1 }, { mixture: { pi: 2 } },
        'Swish', 'Sequential', 'Residual', 'Conv2d', 'BatchNorm2d', { type: 'ReLU' }, { type: 'Flatten' }, [['x', { type: 'ReLU' }]], '__proto__']);
      what += `.${field} = ${JSON.stringify(value[field])}`;
      metadata[key] = JSON.stringify(root);
    }
  }
  return { bytes: encodeSafetensors(tensors, metadata), what, poisoned };
}
