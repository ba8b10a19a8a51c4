import { defineConfig } from 'vitest/config';

// One run over every project: `pnpm test` (unit + end-to-end). Each package also runs alone via Nx.
// One test file at a time: the end-to-end files boot VMs and start engines on a 2-core machine,
// and two qemu instances under TCG would starve each other.
export default defineConfig({
  test: {
    projects: ['packages/*', 'test/*'],
    fileParallelism: false,
  },
});
