import { defineConfig } from 'vitest/config';

// The fixture repository is made with git in beforeAll: seconds, more on two busy cores.
export default defineConfig({
  test: { name: 'nx-plugin', include: ['test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 120_000 },
});
