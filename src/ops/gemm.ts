/**
 * Runs an instance of the GEMM core (shaders/gemm.wgsl) under the variant the context's tuner
 * picks for its op and shape class. An op wrapper describes its product as data: the shader that
 * defines the hooks, the problem size, its own constants, uniforms and bindings; this module adds
 * the variant's entry point, constants and dispatch geometry, and the measurement the tuner runs
 * on first use (on scratch tensors of the same sizes, so the caller's tensors are never touched).
 */
import type { Context, Kernel } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import { GEMM_VARIANTS, type GemmVariant } from '../gpu/gemm_variants.js';
import type { GemmProblem } from '../gpu/tuning.js';
import type { Tensor } from '../gpu/tensor.js';

export interface GemmCall {
  /** The tuning op name, one per distinct access pattern (e.g. 'conv2d_forward', 'matmul_tb'). */
  op: string;
  shader: string;
  problem: GemmProblem;
  /** The op's own override constants (MODE, TRANS_A, DUAL, ...). */
  constants?: Readonly<Record<string, number | boolean>>;
  uniforms: Readonly<Record<string, number | readonly number[]>>;
  bindings: Readonly<Record<string, Tensor>>;
  unbound?: readonly string[];
  label?: string;
}

const MAX_GROUPS = 65535;

/** Whether `v` can run `p` in one dispatch (the workgroup form puts batches on the z axis). */
function fits(v: GemmVariant, p: GemmProblem, maxDim: number): boolean {
  if (v.entry === 'gemm_registers') return true;
  return Math.ceil(p.n / v.tileN) <= maxDim && Math.ceil(p.m / v.tileM) <= maxDim && p.batches <= maxDim;
}

/** The kernel of `call` under variant `v`. */
export function gemmKernel(call: GemmCall, v: GemmVariant): Kernel {
  const p = call.problem;
  const workgroups: Kernel['workgroups'] = v.entry === 'gemm_registers'
    ? grid(Math.ceil((p.batches * Math.ceil(p.m / v.tileM) * Math.ceil(p.n / v.tileN)) / v.invocations))
    : [Math.ceil(p.n / v.tileN), Math.ceil(p.m / v.tileM), p.batches];
  return {
    shader: call.shader, entry: v.entry, constants: { ...call.constants, ...v.constants },
    uniforms: call.uniforms, bindings: call.bindings, unbound: call.unbound, workgroups,
    label: call.label ?? `${call.shader}:${call.op}[${v.name}]`,
  };
}

/**
 * Times every candidate that fits on scratch copies of the call's tensors; median ms by name.
 * The default variant goes first, so that the best time so far is known early: a candidate whose
 * warm-up run (which includes compiling its pipeline) takes over 10 times the best, or whose first
 * timed run takes over twice the best, is not timed further (a slow variant on a software adapter
 * can take seconds per run).
 */
function measurer(ctx: Context, call: GemmCall) {
  // Only the shapes and dtypes of the call's tensors are used, and only if the tuner measures:
  // nothing is copied on the dispatch path.
  return async (variants: readonly GemmVariant[]): Promise<Record<string, number>> => {
    const shapes = Object.entries(call.bindings).map(([name, t]) => [name, t.shape, t.dtype] as const);
    const uniforms = call.uniforms;
    const times: Record<string, number> = {};
    const maxDim = Math.min(ctx.limits.maxComputeWorkgroupsPerDimension, MAX_GROUPS);
    const first = ctx.tuner.defaultVariant(call.problem);
    const order = [first, ...variants.filter((v) => v.name !== first.name)];
    await ctx.scope(async () => {
      const bindings: Record<string, Tensor> = {};
      for (const [name, shape, dtype] of shapes) bindings[name] = ctx.zeros(shape, dtype);
      const scratch: GemmCall = { ...call, uniforms, bindings };
      let best = Infinity;
      for (const v of order) {
        if (!fits(v, call.problem, maxDim)) continue;
        const k = gemmKernel(scratch, v);
        const run = () => ctx.dispatch(k);
        const warm = await ctx.timeIt(run, 1);
        if (warm > 10 * best) {
          times[v.name] = warm;
          continue;
        }
        const once = await ctx.timeIt(run, 1);
        const ms = once > 2 * best ? once : await ctx.timeIt(run, 3);
        times[v.name] = ms;
        best = Math.min(best, ms);
      }
    });
    return times;
  };
}

/** Records `call` under the variant chosen for it; returns the variant's name. */
export function dispatchGemm(ctx: Context, call: GemmCall): string {
  const maxDim = Math.min(ctx.limits.maxComputeWorkgroupsPerDimension, MAX_GROUPS);
  let v = ctx.tuner.choose(call.op, call.problem, measurer(ctx, call));
  // A problem too large for the workgroup form's dispatch runs the grid-folded register form.
  if (!fits(v, call.problem, maxDim)) v = GEMM_VARIANTS.find((x) => x.name === 'registers-8x8')!;
  ctx.dispatch(gemmKernel(call, v));
  return v.name;
}
