// `stele build` → qemu: a manifest of images this test makes (the machine's Debian kernel as a
// LinuxKit kernel image, a busybox init image, an onboot container) is built into each bootable
// format, twice in two directories (the bytes must match), and booted: /init proves the onboot
// bundle is in place and prints a marker made fresh for this run. One qemu at a time.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '@stele/oci';
import { type BootSource, bootQemu, debianKernel } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, FORMATS, type FormatName } from '../src/index.ts';
import { putImage, tarOf } from './pipeline-images.ts';

const marker = `STELE-OS-${randomBytes(6).toString('hex')}`;
let work: string;
let store: Store;
let manifest: string;
const timings: Record<string, number> = {};

// The kernel leaves /dev empty in an initramfs (LinuxKit drops images' dev/console too), so
// /init mounts devtmpfs and takes the console itself.
const INIT = [
  '#!/bin/busybox sh',
  'B=/bin/busybox',
  '$B mount -t devtmpfs dev /dev',
  'exec >/dev/console 2>&1',
  '$B mount -t proc proc /proc',
  'B1=missing',
  '[ -f /containers/onboot/000-hello/config.json ] && [ -f /containers/onboot/000-hello/lower/hello ] && B1=bundle',
  `M1='${marker.slice(0, 10)}'`,
  `M2='${marker.slice(10)}'`,
  '$B printf "%s%s %s\\n" "$M1" "$M2" "$B1"',
  '$B poweroff -f',
  '',
].join('\n');

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'stele-os-boot-'));
  store = await Store.open(join(work, 'store'));
  await putImage(store, 'docker.io/boot/kernel:1', [
    [
      { path: 'kernel', data: readFileSync(debianKernel()) },
      { path: 'kernel.tar', data: await tarOf([{ path: 'lib/', dir: true }]) },
    ],
  ]);
  await putImage(store, 'docker.io/boot/init:1', [
    [
      { path: 'bin/', dir: true },
      { path: 'bin/busybox', data: readFileSync('/bin/busybox'), mode: 0o755 },
      { path: 'init', data: INIT, mode: 0o755 },
    ],
  ]);
  await putImage(store, 'docker.io/boot/hello:1', [[{ path: 'hello', data: 'hi', mode: 0o755 }]], {
    Cmd: ['/hello'],
  });
  manifest = join(work, 'os.yml');
  writeFileSync(
    manifest,
    [
      'kernel:',
      '  image: boot/kernel:1',
      '  cmdline: "console=ttyS0 panic=-1 quiet"',
      'init:',
      '  - boot/init:1',
      'onboot:',
      '  - name: hello',
      '    image: boot/hello:1',
      '',
    ].join('\n'),
  );
});
afterAll(() => {
  console.log(`stele build → boot, marker seen after (ms): ${JSON.stringify(timings)}`);
  rmSync(work, { recursive: true, force: true });
});

function source(format: FormatName, files: string[]): BootSource {
  if (format === 'kernel+initrd') {
    const [kernel, initrd, cmdline] = files;
    return { kernel: kernel ?? '', initrd: initrd ?? '', append: readFileSync(cmdline ?? '', 'utf8') };
  }
  const file = files[0] ?? '';
  if (file.endsWith('.iso')) return { iso: file };
  return { disk: file, format: file.endsWith('.qcow2') ? 'qcow2' : 'raw' };
}

// Each test builds a format twice and boots it, the boot bounded at 150 s (TCG on two busy
// cores): the test's own timeout leaves room for both builds above that.
describe('stele build boots in qemu, byte-reproducibly', { timeout: 400_000 }, () => {
  const formats: FormatName[] = ['kernel+initrd', 'iso-bios', 'iso-efi', 'raw-bios', 'raw-efi', 'qcow2-bios'];
  for (const format of formats) {
    it(`${format}`, async () => {
      const build = (dir: string) =>
        buildImage({ manifest, store, formats: [format], name: 'os', dir: join(work, dir), offline: true });
      const a = await build(`${format}-a`);
      const b = await build(`${format}-b`);
      const files = a.outputs[0]?.files ?? [];
      expect(files.length).toBeGreaterThan(0);
      for (const [i, f] of files.entries()) {
        expect(readFileSync(f).equals(readFileSync(b.outputs[0]?.files[i] ?? '')), `${f} differs`).toBe(true);
      }
      const firmware = FORMATS[format].firmware ?? 'bios';
      const res = await bootQemu({
        ...source(format, files),
        firmware,
        marker,
        timeoutMs: 150_000,
        name: `os-${format}`,
      });
      expect(res.log).toContain(`${marker} bundle`);
      timings[format] = res.markerSeenAfterMs;
    });
  }
});
