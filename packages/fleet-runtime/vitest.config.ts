import { defineConfig } from 'vitest/config';

export default defineConfig({ test: { name: 'fleet-runtime', include: ['test/**/*.test.ts'], testTimeout: 60_000 } });
