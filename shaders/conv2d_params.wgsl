// conv2d_params.wgsl: the uniforms of the conv2d family (conv2d_forward, conv2d_backward_input,
// conv2d_backward_weight), included by each. A wrapper passes the members its entry reads; the
// rest are 0 (src/gpu/shaders.ts packUniforms).

struct Params {
  // Shapes: input [batch, cin, height, width], weights [S, cout, cin, kernel_h, kernel_w],
  // output [batch, cout, out_h, out_w]; images n in [s * images_per_sample, (s + 1) * ...) use sample s.
  batch: u32,
  cin: u32,
  height: u32,
  width: u32,
  cout: u32,
  kernel_h: u32,
  kernel_w: u32,
  out_h: u32,
  out_w: u32,
  images_per_sample: u32,
  stride: vec2<i32>,
  pad: vec2<i32>,
  dilation: vec2<i32>,
  // Forward: which biases are given, the LRT noise key and the counter index of output 0
  // (RandomKey.offset); tap_major_weights: the element count.
  has_bias: u32,
  has_bias_sigma2: u32,
  key: vec2<u32>,
  stream: u32,
  offset: u32,
  count: u32,
  // Backward-input: stride phase classes per axis and the largest class's rows and columns.
  phases: vec2<u32>,
  class_size: vec2<u32>,
  // Backward-weight: the split of each sample's images into chunks (split-K).
  images_per_chunk: u32,
  chunks_per_sample: u32,
};

@group(0) @binding(0) var<uniform> params: Params;

const CONV_LANES = vec4<u32>(0u, 1u, 2u, 3u);

fn out_size() -> u32 { return params.out_h * params.out_w; }
