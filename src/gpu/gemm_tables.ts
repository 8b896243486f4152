/**
 * Tuning tables measured on adapters this project has run on (`ctx.tune()`, then
 * `ctx.tuningTable()`), so those adapters skip first-use tuning. Regenerate with
 * `node bench/run.mjs tune --write`.
 *
 * SwiftShader: measured on 2026-12-01 with `node bench/run.mjs tune --models lenet --batches
 * 32,256 --channels 1` (the shape classes of training and 25-sample prediction of BBB-LRT, BBB and
 * frequentist LeNet on MNIST), on a 2-core machine shared with other work. The barrier-free
 * register tiles won 69 of the 71 classes; the two workgroup wins are sub-millisecond products
 * where timing noise decides.
 */
export const TUNING_FORMAT = 'bayesgpu-gemm-tuning';
export const TUNING_VERSION = 1;

export interface TuningTable {
  format: typeof TUNING_FORMAT;
  version: typeof TUNING_VERSION;
  /** The adapter the times were measured on (`adapterId`); a table is never applied to another. */
  adapter: string;
  /** Winning variant name by shape class key (`op|m..|n..|k..|z..`). */
  choices: Record<string, string>;
  /** Median milliseconds of each variant measured, by shape class key (informative). */
  times?: Record<string, Record<string, number>>;
}

export const SHIPPED_TABLES: readonly TuningTable[] = [
  {
    "format": "bayesgpu-gemm-tuning",
    "version": 1,
    "adapter": "google / swiftshader / swiftshader-device-subzero- / SwiftShader driver 5.0.0 (fallback adapter)",
    "choices": {
      "conv2d_backward_input_lrt|m3|n8|k9|z5": "registers-8x4",
      "conv2d_backward_input_lrt|m3|n8|k9|z8": "registers-8x8",
      "conv2d_backward_input|m3|n8|k9|z5": "registers-8x8",
      "conv2d_backward_input|m3|n8|k9|z8": "registers-8x8",
      "conv2d_backward_weight_lrt|m3|n5|k10|z5": "registers-4x8",
      "conv2d_backward_weight_lrt|m3|n5|k10|z8": "registers-8x8",
      "conv2d_backward_weight_lrt|m3|n7|k10|z5": "registers-8x8",
      "conv2d_backward_weight_lrt|m4|n8|k7|z5": "registers-8x4",
      "conv2d_backward_weight_lrt|m4|n8|k8|z7": "registers-8x8",
      "conv2d_backward_weight|m3|n5|k10|z5": "registers-8x8",
      "conv2d_backward_weight|m3|n5|k10|z8": "registers-8x8",
      "conv2d_backward_weight|m4|n8|k7|z5": "registers-8x8",
      "conv2d_backward_weight|m4|n8|k8|z7": "registers-4x8",
      "conv2d_forward_lrt|m3|n10|k5|z10": "registers-8x8",
      "conv2d_forward_lrt|m3|n10|k5|z5": "registers-8x4",
      "conv2d_forward_lrt|m3|n10|k5|z8": "registers-8x8",
      "conv2d_forward_lrt|m3|n10|k7|z5": "registers-8x8",
      "conv2d_forward_lrt|m4|n7|k8|z10": "registers-8x8",
      "conv2d_forward_lrt|m4|n7|k8|z5": "registers-8x8",
      "conv2d_forward_lrt|m4|n7|k8|z8": "registers-8x8",
      "conv2d_forward|m3|n10|k5|z10": "registers-8x8",
      "conv2d_forward|m3|n10|k5|z5": "registers-8x8",
      "conv2d_forward|m3|n10|k5|z8": "registers-8x8",
      "conv2d_forward|m4|n7|k8|z10": "registers-8x4",
      "conv2d_forward|m4|n7|k8|z5": "registers-8x8",
      "conv2d_forward|m4|n7|k8|z8": "registers-8x8",
      "lrt_linear_backward_input|m5|n7|k4|z0": "registers-4x4",
      "lrt_linear_backward_input|m5|n7|k7|z0": "registers-8x8",
      "lrt_linear_backward_input|m5|n9|k7|z0": "registers-8x8",
      "lrt_linear_backward_input|m8|n7|k4|z0": "registers-8x8",
      "lrt_linear_backward_input|m8|n7|k7|z0": "registers-8x8",
      "lrt_linear_backward_input|m8|n9|k7|z0": "registers-8x8",
      "lrt_linear_backward_weight_ta|m4|n7|k5|z0": "registers-8x8",
      "lrt_linear_backward_weight_ta|m4|n7|k8|z0": "registers-8x8",
      "lrt_linear_backward_weight_ta|m7|n7|k5|z0": "registers-8x8",
      "lrt_linear_backward_weight_ta|m7|n7|k8|z0": "registers-8x8",
      "lrt_linear_backward_weight_ta|m7|n9|k5|z0": "registers-8x8",
      "lrt_linear_backward_weight_ta|m7|n9|k8|z0": "registers-8x8",
      "lrt_linear_forward_tb|m10|n4|k7|z0": "registers-8x4",
      "lrt_linear_forward_tb|m10|n7|k7|z0": "registers-8x8",
      "lrt_linear_forward_tb|m10|n7|k9|z0": "registers-8x8",
      "lrt_linear_forward_tb|m5|n4|k7|z0": "registers-8x8",
      "lrt_linear_forward_tb|m5|n7|k7|z0": "registers-8x4",
      "lrt_linear_forward_tb|m5|n7|k9|z0": "registers-8x8",
      "lrt_linear_forward_tb|m8|n4|k7|z0": "registers-8x4",
      "lrt_linear_forward_tb|m8|n7|k7|z0": "registers-8x4",
      "lrt_linear_forward_tb|m8|n7|k9|z0": "registers-8x8",
      "matmul_ta|m4|n7|k5|z0": "registers-4x8",
      "matmul_ta|m4|n7|k8|z0": "registers-8x8",
      "matmul_ta|m7|n7|k5|z0": "registers-8x8",
      "matmul_ta|m7|n7|k8|z0": "registers-8x8",
      "matmul_ta|m7|n9|k5|z0": "registers-8x8",
      "matmul_ta|m7|n9|k8|z0": "registers-8x4",
      "matmul_tb|m5|n4|k7|z0": "registers-8x8",
      "matmul_tb|m5|n4|k7|z5": "registers-8x8",
      "matmul_tb|m5|n7|k7|z0": "registers-4x8",
      "matmul_tb|m5|n7|k7|z5": "registers-8x8",
      "matmul_tb|m5|n7|k9|z0": "registers-8x8",
      "matmul_tb|m5|n7|k9|z5": "registers-8x8",
      "matmul_tb|m8|n4|k7|z0": "registers-8x4",
      "matmul_tb|m8|n4|k7|z2": "registers-8x4",
      "matmul_tb|m8|n7|k7|z0": "registers-8x8",
      "matmul_tb|m8|n7|k7|z2": "workgroup-128x32",
      "matmul_tb|m8|n7|k9|z0": "registers-8x8",
      "matmul_tb|m8|n7|k9|z2": "registers-8x8",
      "matmul|m5|n7|k4|z0": "registers-4x4",
      "matmul|m5|n7|k7|z0": "workgroup-64x64",
      "matmul|m5|n9|k7|z0": "registers-8x4",
      "matmul|m8|n7|k4|z0": "registers-8x8",
      "matmul|m8|n7|k7|z0": "registers-8x8",
      "matmul|m8|n9|k7|z0": "registers-8x8"
    }
  }
];
