/**
 * The tilings of the GEMM core (shaders/gemm.wgsl), as data: an entry point and its override
 * constants. Every GEMM op can run every variant; src/gpu/tuning.ts picks one per adapter, op and
 * shape class, and tests run each op under every variant against the float64 reference.
 */
export interface GemmVariant {
  /** Stable name, used in tuning tables and in the `gemm.variant` context option. */
  name: string;
  entry: 'gemm_registers' | 'gemm_workgroup';
  constants: Readonly<Record<string, number>>;
  /** Output rows and columns one invocation (registers) or one workgroup (workgroup) computes. */
  tileM: number;
  tileN: number;
  /** Invocations per workgroup. */
  invocations: number;
}

const registers = (rm: number, rn: number): GemmVariant => ({
  name: `registers-${4 * rm}x${4 * rn}`,
  entry: 'gemm_registers',
  constants: { RM: rm, RN: rn, WG: 64 },
  tileM: 4 * rm,
  tileN: 4 * rn,
  invocations: 64,
});

const workgroup = (rm: number, rn: number, wgM: number, wgN: number, tk: number): GemmVariant => ({
  name: `workgroup-${4 * rm * wgM}x${4 * rn * wgN}`,
  entry: 'gemm_workgroup',
  constants: { RM: rm, RN: rn, WG_M: wgM, WG_N: wgN, TK: tk },
  tileM: 4 * rm * wgM,
  tileN: 4 * rn * wgN,
  invocations: wgM * wgN,
});

export const GEMM_VARIANTS: readonly GemmVariant[] = [
  // Barrier-free register tiles: what a software adapter wants (the 8 x 8 tile ran about twice as
  // fast as 4 x 4 on SwiftShader for LeNet's conv2; the narrow ones fit dimensions of at most 4).
  registers(2, 2),
  registers(1, 1),
  registers(1, 2),
  registers(2, 1),
  // Workgroup-memory tiles with register blocking: what GPUs want. 64 invocations each; the
  // 32 x 32 tile keeps more workgroups busy on small problems.
  workgroup(2, 2, 8, 8, 16),
  workgroup(1, 1, 8, 8, 16),
  workgroup(2, 2, 16, 4, 8),
];
