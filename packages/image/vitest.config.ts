import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'image',
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // GNU tar, which the tests read outputs with, warns about every LINUXKIT.* pax record.
    env: { TAR_OPTIONS: '--warning=no-unknown-keyword' },
  },
});
