// Copies a checkpoint without its optimizer state (for shipping a model, e.g. the demo's):
//   node scripts/export_checkpoint.mjs IN.safetensors OUT.safetensors
// Uses the built package (npm run build first).
import { readFileSync } from 'node:fs';
import { createContext, loadModel, modelMetadata, saveModelFile } from '../dist/node.js';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node scripts/export_checkpoint.mjs IN.safetensors OUT.safetensors');
  process.exit(2);
}
const ctx = await createContext();
try {
  const bytes = new Uint8Array(readFileSync(input));
  const model = loadModel(ctx, bytes);
  // The caller's metadata travels; the optimizer state does not (saveModel without `optimizer`).
  await saveModelFile(output, model, { metadata: { ...modelMetadata(bytes), exportedFrom: input.split('/').pop() } });
  const c = model.config;
  console.log(`wrote ${output} (${c ? `${c.model}, ${c.bayesian ? c.layerType : 'frequentist'}` : 'a network of its own'}, no optimizer state)`);
} finally {
  ctx.destroy();
}
process.exit(0);
