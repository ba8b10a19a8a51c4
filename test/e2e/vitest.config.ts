import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'e2e',
    include: ['test/**/*.test.ts'],
    // Whole-toolchain runs on 2 cores: package builds (~minutes), qemu under TCG.
    testTimeout: 900_000,
    hookTimeout: 600_000,
    // One file at a time: each starts its own dockerd, registry and VMs.
    fileParallelism: false,
  },
});
