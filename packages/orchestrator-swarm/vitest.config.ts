import { defineConfig } from 'vitest/config';

// Starts real dockerd engines (in swarm mode, some in network namespaces of a private LAN) and runs
// swarm services on them: one file at a time on 2 cores.
export default defineConfig({
  test: {
    name: 'orchestrator-swarm',
    include: ['test/**/*.test.ts'],
    testTimeout: 180_000,
    fileParallelism: false,
  },
});
