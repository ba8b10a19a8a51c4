import { defineConfig } from 'vitest/config';

// Some tests start the installed bin (tsx compiles on start: ~1.5 s idle, over 5 s on two busy
// cores) or build small images: timeouts sized for a loaded machine, not for the fast case.
export default defineConfig({
  test: { name: 'cli', include: ['test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 120_000 },
});
