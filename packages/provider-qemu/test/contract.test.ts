// The provider contract of @stele/fleet against real qemu (TCG).
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { providerContract } from '@stele/fleet/contract';
import { QemuProvider } from '../src/index.ts';
import { guestImage, portBase } from './fixture.ts';

providerContract('qemu', async () => {
  const work = await mkdtemp(join(tmpdir(), 'stele-qemu-contract-'));
  const image = await guestImage(work);
  const dir = join(work, 'qemu');
  // Each complete copy has a marker file of its own: the markers ever seen count the copies made.
  const markers = new Set<number>();
  return {
    provider: async () =>
      new QemuProvider({ fleet: 'contract', dir, memoryMiB: 256, accel: 'tcg', sshPortBase: portBase(0) }),
    image: async (identity) => image(identity),
    uploads: async () => {
      for (const name of await readdir(join(dir, 'images')).catch(() => [] as string[])) {
        const marker = await stat(join(dir, 'images', name, 'published.json')).catch(() => undefined);
        if (marker) markers.add(marker.ino);
      }
      return markers.size;
    },
    hostName: (n) => `contract-1-${n}`,
    cleanup: () => rm(work, { recursive: true, force: true }),
  };
});
