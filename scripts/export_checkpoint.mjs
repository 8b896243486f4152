// Copies a checkpoint without its optimizer state (for shipping a model, e.g. the demo's):
//   node scripts/export_checkpoint.mjs IN.safetensors OUT.safetensors
// Uses the built package (npm run build first).
import { createContext, loadCheckpointFile, saveCheckpointFile } from '../dist/node.js';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node scripts/export_checkpoint.mjs IN.safetensors OUT.safetensors');
  process.exit(2);
}
const ctx = await createContext();
try {
  const loaded = await loadCheckpointFile(ctx, input);
  const { format: _format, config: _config, optimizer: _optimizer, ...extra } = loaded.metadata;
  await saveCheckpointFile(loaded.model, output, { extra: { ...extra, exportedFrom: input.split('/').pop() } });
  console.log(`wrote ${output} (${loaded.model.config.model}, ${loaded.model.config.bayesian ? loaded.model.config.layerType : 'frequentist'}, no optimizer state)`);
} finally {
  ctx.destroy();
}
process.exit(0);
