import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'peers',
    include: ['test/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 300_000,
    // Peers are heavy (dockerd, qemu under TCG): one file at a time on 2 cores.
    fileParallelism: false,
  },
});
