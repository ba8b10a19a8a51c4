import { defineConfig } from 'vitest/config';

export default defineConfig({ test: { name: 'nx-plugin', include: ['test/**/*.test.ts'], testTimeout: 60_000 } });
