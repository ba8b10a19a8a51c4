import { defineConfig } from 'vitest/config';

// Boots real VMs under TCG on a 2-core machine.
export default defineConfig({ test: { name: 'provider-qemu', include: ['test/**/*.test.ts'], testTimeout: 180_000 } });
