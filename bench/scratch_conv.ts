// scratch (not committed): times conv2d entries with shaders/conv2d.wgsl replaced by $VARIANT
import { readFileSync, readdirSync } from 'node:fs';
import { createContext } from '../src/node.js';
import { conv2dBackward, conv2dForward, lrtConv2dBackward, lrtConv2dForward } from '../src/ops/conv2d.js';
import type { Context } from '../src/node.js';
async function timeKernel(ctx: Context, name: string, _s: string, flops: number, run: () => unknown, _t: unknown) {
  const ts: number[] = [];
  const cs: number[] = [];
  for (let i = 0; i < 5; i++) { const c0 = process.cpuUsage(); const t0 = performance.now(); ctx.scope(() => { run(); }); await ctx.sync(); ts.push(performance.now() - t0); const c = process.cpuUsage(c0); cs.push((c.user + c.system) / 1000); }
  const best = Math.min(...ts.slice(1));
  const cpu = Math.min(...cs.slice(1));
  console.log(`${name.padEnd(12)} min ${best.toFixed(0)} ms  ${(flops / best / 1e6).toFixed(3)} GFLOP/s  cpu ${cpu.toFixed(0)} ms  (2-core-equivalent ${(2 * flops / cpu / 1e6).toFixed(3)} GFLOP/s)  all ${ts.map((t) => t.toFixed(0)).join(' ')}`);
}
export async function main(args: string[]) {
  const files: Record<string, string> = {};
  for (const f of readdirSync('shaders')) if (f.endsWith('.wgsl')) files[f] = readFileSync('shaders/' + f, 'utf8');
  if (process.env.VARIANT) files['conv2d.wgsl'] = readFileSync(process.env.VARIANT, 'utf8');
  const ctx = await createContext({ shaderFiles: files });
  const which = args[0] ?? 'f';
  const N = Number(args[1] ?? 256);
  const rnd = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + s) * 0.5);
  const x = ctx.tensor(rnd(N * 6 * 196, 1), [N, 6, 14, 14]);
  const w = ctx.tensor(rnd(16 * 150, 2), [16, 6, 5, 5]);
  const ws2 = ctx.tensor(rnd(16 * 150, 3).map(Math.abs), [16, 6, 5, 5]);
  const b = ctx.tensor(rnd(16, 4), [16]);
  const dy = ctx.tensor(rnd(N * 1600, 5), [N, 16, 10, 10]);
  const conv = 2 * N * 1600 * 150;
  const key = { seed: 1, step: 1, stream: 0 };
  const t = { warmup: 1, runs: 3 };
  if (which.includes('f')) await timeKernel(ctx, 'forward', 'lenet2', conv, () => conv2dForward(ctx, x, w, b), t);
  if (which.includes('P')) {
    const K = 150, CO4 = 4;
    const u = { batch: N, cin: 6, height: 14, width: 14, cout: 16, kernel_h: 5, kernel_w: 5, out_h: 10, out_w: 10, images_per_sample: N, images_per_chunk: 1, chunks_per_sample: 1, stride: [1, 1], pad: [0, 0], dilation: [1, 1], has_bias: 1, has_bias_sigma2: 0, key: [0, 0], stream: 0, count: K * CO4 * 4 };
    const C = { WG: 64, TCO: Number(process.env.TCO ?? 4), TCI: 4 };
    const inv = N * 4 * 25;
    await timeKernel(ctx, 'fwd_packed', 'lenet2', conv, () => {
      const packed = ctx.empty([K * CO4 * 4]);
      ctx.dispatch({ shader: 'conv2d.wgsl', entry: 'pack_weights', constants: C, uniforms: u, bindings: { w, packed }, workgroups: [Math.ceil(u.count / 64)] });
      const y = ctx.empty([N, 16, 10, 10]);
      ctx.dispatch({ shader: 'conv2d.wgsl', entry: 'forward_packed', constants: C, uniforms: u, bindings: { input: x, w4: packed, bias: b, y }, workgroups: [Math.ceil(inv / 64)] });
      return y;
    }, t);
  }
  if (which.includes('D')) {
    const u = { batch: N, cin: 6, height: 14, width: 14, cout: 16, kernel_h: 5, kernel_w: 5, out_h: 10, out_w: 10, images_per_sample: N, images_per_chunk: 1, chunks_per_sample: 1, stride: [1, 1], pad: [0, 0], dilation: [1, 1], has_bias: 1, has_bias_sigma2: 0, key: [0, 0], stream: 0, count: 0 };
    const tco = Number(process.env.TCO ?? 4), tp = Number(process.env.TP ?? 4);
    const C: Record<string, number> = { WG: Number(process.env.WG ?? 64), TCO: tco, TCI: 4 }; if (process.env.CB) { C.CHANNEL_BLOCKS = Number(process.env.CB); C.POSITION_BLOCKS = Number(process.env.PB); }
    const inv = N * Math.ceil(16 / tco) * Math.ceil(100 / tp);
    let y0: Float32Array | null = null;
    await timeKernel(ctx, `fwd_${tco}x${tp}`, 'lenet2', conv, () => {
      const y = ctx.empty([N, 16, 10, 10]);
      ctx.dispatch({ shader: 'conv2d.wgsl', entry: 'forward', constants: C, uniforms: u, bindings: { input: x, w, bias: b, y }, workgroups: [Math.ceil(inv / C.WG)] });
      return y;
    }, t);
    const y = ctx.empty([N, 16, 10, 10]);
    ctx.dispatch({ shader: 'conv2d.wgsl', entry: 'forward', constants: C, uniforms: u, bindings: { input: x, w, bias: b, y }, workgroups: [Math.ceil(inv / C.WG)] });
    const ref = await conv2dForward(ctx, x, w, b).read();
    y0 = await y.read();
    let err = 0; for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(ref[i] - y0[i]));
    console.log('  max abs diff vs committed forward', err);
  }
  if (which.includes('i')) await timeKernel(ctx, 'bwd_input', 'lenet2', conv, () => conv2dBackward(ctx, x, w, dy, {}, { input: true }).dx, t);
  if (which.includes('w')) await timeKernel(ctx, 'bwd_weight', 'lenet2', conv, () => conv2dBackward(ctx, x, w, dy, {}, {}), t);
  if (which.includes('L')) await timeKernel(ctx, 'lrt_fwd', 'lenet2', 2 * conv, () => lrtConv2dForward(ctx, x, w, ws2, b, b, {}, key), t);
  if (which.includes('B')) { const { std } = lrtConv2dForward(ctx, x, w, ws2, b, b, {}, key); await timeKernel(ctx, 'lrt_bwd', 'lenet2', 4 * conv, () => lrtConv2dBackward(ctx, x, dy, std, w, ws2, {}, key, { input: true, bias: true }), t); }
  ctx.destroy();
}
