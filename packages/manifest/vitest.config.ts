import { defineConfig } from 'vitest/config';

// Property tests run a few hundred cases per property; give them room on a shared 2-core box.
export default defineConfig({ test: { name: 'manifest', include: ['test/**/*.test.ts'], testTimeout: 60_000 } });
