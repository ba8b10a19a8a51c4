// Every output format with the real host tools: names as LinuxKit writes them, outputs that the
// tools themselves read back, byte-identical rebuilds in another directory, and no partial files.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { debianKernel, makeBusyboxInitramfs } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildFormat,
  FORMATS,
  type FormatName,
  HostToolError,
  type HostTools,
  type RunOptions,
  spawnHostTools,
} from '../src/index.ts';

const CMDLINE = `console=ttyS0 panic=-1 quiet stele.test="a b" it's`;
const ALL = Object.keys(FORMATS) as FormatName[];

let root: string;
let kernel: string;
let initrd: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'stele-formats-'));
  kernel = debianKernel();
  initrd = await makeBusyboxInitramfs({ dir: root, init: 'echo hello\npoweroff -f\n' });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
}

async function buildAll(dir: string, env?: { sourceDateEpoch?: number }): Promise<Map<string, string>> {
  const tools = spawnHostTools();
  const sums = new Map<string, string>();
  for (const f of ALL) {
    const res = await buildFormat(f, { name: 'stele', dir, kernel, initrd, cmdline: CMDLINE, tools, ...env });
    for (const file of res.files) sums.set(file.slice(dir.length + 1), sha256(file));
  }
  return sums;
}

describe('FORMATS', () => {
  it('uses LinuxKit format names and output file names', () => {
    const outputs = Object.fromEntries(ALL.map((f) => [f, FORMATS[f].outputs('x')]));
    expect(outputs).toEqual({
      'kernel+initrd': ['x-kernel', 'x-initrd.img', 'x-cmdline'],
      'tar-kernel-initrd': ['x-initrd.tar'],
      'iso-bios': ['x.iso'],
      'iso-efi': ['x-efi.iso'],
      'iso-efi-initrd': ['x-efi-initrd.iso'],
      'raw-bios': ['x-bios.img'],
      'raw-efi': ['x-efi.img'],
      'qcow2-bios': ['x.qcow2'],
      'qcow2-efi': ['x-efi.qcow2'],
      vmdk: ['x.vmdk'],
      vhd: ['x.vhd'],
      aws: ['x.raw'],
      gcp: ['x.img.tar.gz'],
    });
  });
});

describe('buildFormat with the real tools', () => {
  let a: string;
  let b: string;
  let sumsA: Map<string, string>;

  beforeAll(async () => {
    a = join(root, 'one');
    b = join(root, 'elsewhere', 'two');
    sumsA = await buildAll(a);
  });

  it('writes exactly the listed files and nothing else (no temp dirs left)', () => {
    const expected = ALL.flatMap((f) => FORMATS[f].outputs('stele')).sort();
    expect(readdirSync(a).sort()).toEqual(expected);
    for (const f of expected) expect(statSync(join(a, f)).size).toBeGreaterThan(0);
  });

  it('is byte-identical when built again in another directory', async () => {
    const sumsB = await buildAll(b);
    expect([...sumsB.entries()].sort()).toEqual([...sumsA.entries()].sort());
  });

  it('changes with SOURCE_DATE_EPOCH where a timestamp is recorded, and only there', async () => {
    const c = join(root, 'later');
    const sumsC = await buildAll(c, { sourceDateEpoch: 1700000000 });
    const changed = [...sumsC.keys()].filter((k) => sumsC.get(k) !== sumsA.get(k)).sort();
    // kernel+initrd copies its inputs; everything else stamps files, volumes or footers.
    expect(changed).toEqual(
      ALL.flatMap((f) => FORMATS[f].outputs('stele'))
        .filter((n) => !['stele-kernel', 'stele-initrd.img', 'stele-cmdline'].includes(n))
        .sort(),
    );
  });

  it('kernel+initrd and tar-kernel-initrd carry the inputs unchanged', () => {
    expect(sha256(join(a, 'stele-kernel'))).toBe(sha256(kernel));
    expect(sha256(join(a, 'stele-initrd.img'))).toBe(sha256(initrd));
    expect(readFileSync(join(a, 'stele-cmdline'), 'utf8')).toBe(CMDLINE);
    const listing = run('tar', ['-tvf', join(a, 'stele-initrd.tar')]);
    expect(listing).toMatch(/-rw-r--r-- 0\/0 +\d+ 2017-04-18 16:30 kernel\n/);
    expect(
      listing
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/\s+/).at(-1)),
    ).toEqual(['kernel', 'initrd.img', 'cmdline']);
    expect(run('tar', ['-xOf', join(a, 'stele-initrd.tar'), 'cmdline'])).toBe(CMDLINE);
  });

  it('BIOS disk: MBR with one bootable FAT partition at 1 MiB holding kernel and initrd', () => {
    const disk = join(a, 'stele-bios.img');
    const mbr = readFileSync(disk).subarray(0, 512);
    expect(mbr.readUInt16LE(510)).toBe(0xaa55);
    expect(mbr[446]).toBe(0x80);
    expect(mbr.readUInt32LE(446 + 8)).toBe(2048);
    expect(mbr.readUInt32LE(446 + 12)).toBe(statSync(disk).size / 512 - 2048);
    const dir = run('mdir', ['-i', `${disk}@@1048576`, '-b', '::/boot']);
    expect(dir.split('\n').filter(Boolean).sort()).toEqual(['::/boot/initrd.img', '::/boot/kernel']);
    expect(sha256(join(a, 'stele.raw'))).toBe(sha256(disk)); // aws = the BIOS raw disk
  });

  it('EFI disk: valid GPT (both headers) with an ESP holding GRUB, kernel and initrd', () => {
    const disk = join(a, 'stele-efi.img');
    const bytes = readFileSync(disk);
    const sectors = bytes.length / 512;
    const primary = bytes.subarray(512, 1024);
    const backup = bytes.subarray((sectors - 1) * 512);
    for (const h of [primary, backup]) expect(h.toString('latin1', 0, 8)).toBe('EFI PART');
    expect(primary.readBigUInt64LE(32)).toBe(BigInt(sectors - 1));
    expect(backup.readBigUInt64LE(32)).toBe(1n);
    // the ESP type GUID in its on-disk byte order
    expect(bytes.subarray(1024, 1040).toString('hex')).toBe('28732ac11ff8d211ba4b00a0c93ec93b');
    const files = run('mdir', ['-i', `${disk}@@1048576`, '-b', '-/', '::/']);
    expect(files).toContain('::/EFI/BOOT/BOOTX64.EFI');
    expect(files).toContain('::/boot/kernel');
  });

  it('qcow2, vmdk and vhd hold the same disk as the raw images', () => {
    const cmp = (fmt: string, file: string, raw: string) =>
      run('qemu-img', ['compare', '-f', fmt, '-F', 'raw', join(a, file), join(a, raw)]);
    expect(cmp('qcow2', 'stele.qcow2', 'stele-bios.img')).toMatch(/identical/);
    expect(cmp('qcow2', 'stele-efi.qcow2', 'stele-efi.img')).toMatch(/identical/);
    expect(cmp('vmdk', 'stele.vmdk', 'stele-bios.img')).toMatch(/identical/);
    expect(cmp('vpc', 'stele.vhd', 'stele-bios.img')).toMatch(/identical/);
    const desc = readFileSync(join(a, 'stele.vmdk')).toString('latin1', 512, 1536);
    expect(desc).toMatch(/^CID=[0-9a-f]{8}$/m);
    expect(desc).toContain('"stele.vmdk"'); // the extent names the final file, not a temp name
    const footer = readFileSync(join(a, 'stele.vhd')).subarray(-512);
    expect(footer.toString('latin1', 0, 8)).toBe('conectix');
    expect(footer.readUInt32BE(24)).toBe(1492533000 - 946684800);
    let sum = 0;
    footer.forEach((v, i) => {
      if (i < 64 || i >= 68) sum += v;
    });
    expect(footer.readUInt32BE(64)).toBe(~sum >>> 0);
  });

  it('gcp is a gzip’d tar holding exactly disk.raw, the BIOS disk', () => {
    const gz = join(a, 'stele.img.tar.gz');
    expect(run('tar', ['-tzf', gz])).toBe('disk.raw\n');
    const inner = execFileSync('tar', ['-xzOf', gz, 'disk.raw'], { maxBuffer: 1 << 30 });
    expect(createHash('sha256').update(inner).digest('hex')).toBe(sha256(join(a, 'stele-bios.img')));
  });

  it('ISOs are read by xorriso and name the boot files', () => {
    for (const [iso, want] of [
      ['stele.iso', ['/boot/kernel', '/boot/initrd.img', '/isolinux/isolinux.cfg']],
      ['stele-efi.iso', ['/boot/kernel', '/boot/initrd.img', '/EFI/BOOT/BOOTX64.EFI']],
      ['stele-efi-initrd.iso', ['/kernel', '/initrd.img']],
    ] as const) {
      const found = execFileSync('xorriso', ['-indev', join(a, iso), '-find', '/', '-type', 'f'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      for (const w of want) expect(found).toContain(`'${w}'`);
    }
  });
});

describe('failures', () => {
  function recording(failOn?: string): { tools: HostTools; calls: { cmd: string; env?: Record<string, string> }[] } {
    const real = spawnHostTools();
    const calls: { cmd: string; env?: Record<string, string> }[] = [];
    return {
      calls,
      tools: {
        run(cmd: string, args: readonly string[], opts?: RunOptions) {
          calls.push({ cmd, env: opts?.env });
          if (cmd === failOn) return Promise.reject(new HostToolError(`${cmd} failed (exit 1)`, cmd, args, 1, ''));
          return real.run(cmd, args, opts);
        },
      },
    };
  }

  it('leaves no output and no temp dir when a tool fails', async () => {
    const dir = join(root, 'failing');
    mkdirSync(dir);
    for (const [format, tool] of [
      ['iso-bios', 'xorriso'],
      ['raw-efi', 'mcopy'],
      ['vmdk', 'qemu-img'],
    ] as const) {
      const { tools } = recording(tool);
      await expect(buildFormat(format, { name: 'x', dir, kernel, initrd, cmdline: 'c', tools })).rejects.toThrow(
        new RegExp(`^${format.replace('+', '\\+')}: ${tool} failed`),
      );
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('passes SOURCE_DATE_EPOCH to every tool', async () => {
    const { tools, calls } = recording();
    await buildFormat('iso-efi', {
      name: 'x',
      dir: join(root, 'env'),
      kernel,
      initrd,
      cmdline: 'c',
      tools,
      sourceDateEpoch: 1600000000,
    });
    expect(calls.map((c) => c.cmd)).toEqual(['grub-mkimage', 'mkfs.vfat', 'mmd', 'mcopy', 'xorriso']);
    for (const c of calls) expect(c.env?.SOURCE_DATE_EPOCH).toBe('1600000000');
  });

  it('rejects unknown formats, bad names, missing inputs and too small disks clearly', async () => {
    const tools = spawnHostTools();
    const dir = join(root, 'bad');
    const base = { name: 'x', dir, kernel, initrd, cmdline: '', tools };
    await expect(buildFormat('iso', base)).rejects.toThrow(/iso: unknown format; known: kernel\+initrd, /);
    await expect(buildFormat('raw-bios', { ...base, name: '../x' })).rejects.toThrow(/image name/);
    await expect(buildFormat('raw-bios', { ...base, kernel: join(root, 'nope') })).rejects.toThrow(
      /kernel .*nope does not exist/,
    );
    await expect(buildFormat('raw-bios', { ...base, sizeMb: 4 })).rejects.toThrow(/disk size 4 MiB is too small/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('honours sizeMb for disks', async () => {
    const dir = join(root, 'sized');
    const res = await buildFormat('raw-efi', {
      name: 'x',
      dir,
      kernel,
      initrd,
      cmdline: '',
      tools: spawnHostTools(),
      sizeMb: 64,
    });
    expect(statSync(res.files[0] ?? '').size).toBe(64 * 1024 * 1024);
  });
});
