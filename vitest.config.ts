import { defineConfig } from 'vitest/config';

// One run over every project: `pnpm test` (unit + end-to-end). Each package also runs alone via Nx.
export default defineConfig({
  test: {
    projects: ['packages/*', 'test/*'],
  },
});
