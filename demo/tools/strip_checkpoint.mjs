#!/usr/bin/env node
/**
 * Drops the Adam state from a bayesgpu checkpoint, in place: the CLI saves the
 * optimizer's moments (tensors optimizer.m.* and optimizer.v.*, and the
 * metadata key 'optimizer') so that training can resume, which triples the
 * file. The demo only predicts, so it ships mu and rho alone (LeNet: about
 * 0.5 MB instead of 1.5 MB). Model config and the other metadata are kept;
 * the parameter tensors are copied bit for bit.
 *
 * Usage: node demo/tools/strip_checkpoint.mjs demo/model/lenet_lrt.safetensors [more files]
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { DIST, ensureBuilt } from '../../scripts/build.mjs';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node demo/tools/strip_checkpoint.mjs FILE.safetensors [...]');
  process.exit(2);
}
await ensureBuilt();
const { decodeSafetensors, encodeSafetensors } = await import(pathToFileURL(`${DIST}/index.js`).href);

for (const file of files) {
  const before = readFileSync(file);
  const { tensors, metadata } = decodeSafetensors(new Uint8Array(before.buffer, before.byteOffset, before.byteLength));
  const kept = {};
  let dropped = 0;
  for (const [name, t] of tensors) {
    if (t.dtype !== 'F32') throw new Error(`${file}: tensor '${name}' is ${t.dtype}; a bayesgpu checkpoint holds F32 tensors only`);
    if (name.startsWith('optimizer.')) dropped++;
    else kept[name] = { dtype: 'F32', shape: t.shape, data: t.data };
  }
  const { optimizer: _, ...rest } = metadata;
  const after = encodeSafetensors(kept, rest);
  // Written next to the file and renamed over it, so a failure leaves the original.
  writeFileSync(`${file}.tmp`, after);
  renameSync(`${file}.tmp`, file);
  console.log(`${file}: dropped ${dropped} optimizer tensors, ${(before.length / 1024).toFixed(0)} KiB -> ${(after.length / 1024).toFixed(0)} KiB`);
}
