import { defineConfig } from 'vitest/config';

// Starts real dockerd engines (one in swarm mode) and runs swarm services on them.
export default defineConfig({
  test: { name: 'orchestrator-swarm', include: ['test/**/*.test.ts'], testTimeout: 180_000 },
});
