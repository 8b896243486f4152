import { defineConfig } from 'vitest/config';

// Every test file opens one WebGPU device (Dawn on SwiftShader without a GPU).
// Files run one at a time: the software rasterizer already uses every core.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    globalSetup: ['test/global_setup.ts'],
  },
});
