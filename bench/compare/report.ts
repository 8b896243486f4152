/** The JSON that `npm run bench` writes, and the markdown table of ratios it prints. */
import type { Ceiling } from './ceiling.js';
import type { McResult, MemoryResult, TrainingResult } from './end_to_end.js';
import type { PeerName } from './implementations.js';
import type { Measurement } from './timing.js';

/** A measurement that failed (the error names why); the other implementations of the case still report. */
export interface Failure {
  ms: null;
  gflops: null;
  error: string;
}

export interface CaseResult {
  op: string;
  shape: string;
  batch: number;
  model: string;
  layer: string;
  flops: number;
  ours: Measurement | Failure;
  peers: Partial<Record<PeerName, Measurement | Failure>>;
}

export interface BenchResult {
  date: string;
  adapter: string;
  timing: { method: string; kernels: string; peersCpu: string; endToEnd: string; statistic: string };
  versions: { node: string; tfjs: string };
  config: Record<string, unknown>;
  cases: CaseResult[];
  ceiling: Ceiling | null;
  training: TrainingResult | null;
  mcPrediction: McResult | null;
  memory: MemoryResult | null;
}

const fmt = (x: number | null | undefined, digits = 2) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(digits));
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;

/**
 * One row per case. "peer / ours" is the peer's median time over bayesgpu's: above 1, bayesgpu is
 * faster. "% ceiling" is bayesgpu's GFLOP/s as a share of the adapter's best matmul.
 */
export function markdown(r: BenchResult, peers: readonly PeerName[]): string {
  const lines: string[] = [];
  lines.push(`### bayesgpu vs TensorFlow.js ${r.versions.tfjs} on ${r.adapter}`);
  lines.push('');
  lines.push(`${r.date}; ${r.timing.statistic}; bayesgpu and tfjs-webgpu: ${r.timing.kernels}; tfjs-cpu: ${r.timing.peersCpu}. "peer / ours" > 1: bayesgpu is faster.`);
  lines.push('');
  if (r.cases.length) {
    const head = ['op', 'shape', 'batch', 'ours ms', 'ours GFLOP/s', ...(r.ceiling ? ['% ceiling'] : []), ...peers.flatMap((p) => [`${p} ms`, `${p} / ours`])];
    lines.push(`| ${head.join(' | ')} |`);
    lines.push(`|${head.map((h, i) => (i < 2 ? '---' : '---:')).join('|')}|`);
    for (const c of r.cases) {
      const ours = c.ours.ms === null ? null : c.ours;
      const cells = [c.op, c.shape, String(c.batch), ours ? fmt(ours.ms) : 'error', ours ? fmt(ours.gflops, 3) : '–'];
      if (r.ceiling) cells.push(ours ? `${fmt((100 * ours.gflops) / r.ceiling.gflops, 1)}%` : '–');
      for (const p of peers) {
        const m = c.peers[p];
        if (!m || m.ms === null) cells.push(m ? 'error' : '–', '–');
        else cells.push(fmt(m.ms), ours ? `${fmt(m.ms / ours.ms)}×` : '–');
      }
      lines.push(`| ${cells.join(' | ')} |`);
    }
    lines.push('');
  }
  const summary: [string, string][] = [];
  if (r.ceiling) summary.push(['ceiling: best GEMM', `${fmt(r.ceiling.gflops, 3)} GFLOP/s (${r.ceiling.variant}, ${r.ceiling.size}³, ${fmt(r.ceiling.ms)} ms)`]);
  if (r.training) summary.push([`training: BBB-LRT LeNet, Adam, batch ${r.training.batch}`, `${fmt(r.training.samplesPerSecond, 1)} samples/s (${fmt(r.training.msPerStep)} ms/step)`]);
  if (r.mcPrediction) {
    const m = r.mcPrediction;
    summary.push([`MC prediction: T = ${m.samples}, batch ${m.batch}`, `batched ${fmt(m.batchedMs)} ms; ${m.samples} passes of 1 sample ${fmt(m.loopedMs)} ms (${fmt(m.speedup)}× for batching)`]);
  }
  if (r.memory) {
    const m = r.memory;
    summary.push(['training: peak GPU bytes vs minimum', `${mib(m.peakBytes)} vs ${mib(m.minimumBytes)} (${fmt(m.peakOverMinimum)}×)`]);
    summary.push(['training: live buffers across steps', m.liveBuffers.stable ? `stable (${m.liveBuffers.perStep[0] ?? 0} buffers)` : `changed by ${m.liveBuffers.growth} buffers (${m.liveBuffers.perStep.join(', ')})`]);
  }
  if (summary.length) {
    lines.push('| end to end | result |');
    lines.push('|---|---|');
    for (const [k, v] of summary) lines.push(`| ${k} | ${v} |`);
  }
  return lines.join('\n');
}
