// The qemu provider as the fleet runtime's registry builds it: from fleet.yml's `provider:`
// section (type qemu) and the fleet's context.
import { dirname, join, resolve } from 'node:path';
import type { ProviderPlugin } from '@stele/fleet';
import type { Provider as ProviderConfig } from '@stele/manifest';
import { BOOT_FORMAT } from './images.ts';
import { QemuProvider } from './provider.ts';

export type QemuConfig = Extract<ProviderConfig, { type: 'qemu' }>;

export const plugin: ProviderPlugin<QemuConfig> = {
  type: 'qemu',
  bootFormat: () => BOOT_FORMAT,
  async create(config, ctx) {
    return new QemuProvider({
      fleet: ctx.fleet,
      // `dir` is relative to the fleet.yml; by default the fleet's own working dir (.stele/).
      dir: config.dir ? resolve(dirname(ctx.fleetFile), config.dir) : join(ctx.workDir, 'qemu'),
      cpus: config.cpus,
      memoryMiB: config.memoryMiB,
      accel: config.accel,
      sshPortBase: config.sshPortBase,
      ...(config.forwards ? { forwards: config.forwards } : {}),
    });
  },
};
