// The initrd writer against the system's GNU cpio: what we write, cpio lists and extracts with the
// right names, types, modes, owners, times, contents, links and device numbers.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LINUXKIT_EPOCH, writeInitrd } from '../src/index.ts';

type Entry = Parameters<ReturnType<typeof pack>['entry']>[0] & { body?: Buffer | string };

function tarOf(entries: Entry[]): Readable {
  const p = pack();
  for (const { body, ...h } of entries) {
    if (body !== undefined) p.entry(h, body);
    else p.entry(h);
  }
  p.finalize();
  return p as unknown as Readable;
}

const big = randomBytes(3 * 1024 * 1024 + 5);
const KERNEL = Buffer.from('not really a kernel');

function sample(): Entry[] {
  const t = new Date('2001-02-03T04:05:06Z');
  return [
    { name: './', type: 'directory', mode: 0o755, mtime: t },
    { name: 'boot/', type: 'directory', mode: 0o755 },
    { name: 'boot/kernel', type: 'file', mode: 0o644, body: KERNEL },
    { name: 'boot/cmdline', type: 'file', mode: 0o644, body: 'console=ttyS0 quiet' },
    { name: 'boot/ucode.cpio', type: 'file', mode: 0o644, body: 'UCODE' },
    { name: 'boot/other', type: 'file', mode: 0o644, body: 'skipped' },
    { name: 'bin/', type: 'directory', mode: 0o755 },
    { name: 'bin/tool', type: 'file', mode: 0o4755, uid: 1000, gid: 1001, mtime: t, body: '#!/bin/sh\necho x\n' },
    { name: 'bin/link-to-tool', type: 'link', linkname: 'bin/tool' },
    { name: 'bin/sym', type: 'symlink', linkname: 'tool' },
    { name: 'etc/', type: 'directory', mode: 0o700, uid: 5, gid: 6 },
    { name: 'etc/big', type: 'file', mode: 0o600, body: big },
    { name: 'etc/empty', type: 'file', mode: 0o640, body: '' },
    { name: 'etc/odd', type: 'file', mode: 0o644, body: 'abc' },
    { name: 'dev/', type: 'directory', mode: 0o755 },
    { name: 'dev/console', type: 'character-device', mode: 0o600, devmajor: 5, devminor: 1 },
    { name: 'dev/sda', type: 'block-device', mode: 0o660, devmajor: 8, devminor: 0 },
    { name: 'dev/fifo', type: 'fifo', mode: 0o644 },
  ];
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'stele-cpio-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function sh(cmd: string, cwd: string): string {
  return execFileSync('sh', ['-c', cmd], { cwd, encoding: 'utf8' });
}

describe('writeInitrd', () => {
  it('round-trips through GNU cpio: names in order, modes, owners, mtime, contents, links, devices', async () => {
    const out = join(work, 'a.img');
    const res = await writeInitrd(tarOf(sample()), out);
    expect(res.kernel?.equals(KERNEL)).toBe(true);
    expect(res.cmdline).toBe('console=ttyS0 quiet');
    expect(res.ucode?.toString()).toBe('UCODE');
    expect(res.bytes).toBe(statSync(out).size);
    expect(readdirSync(work)).toEqual(['a.img']); // no temp file left

    const gz = readFileSync(out);
    // gzip header: magic, deflate, no flags (no name), mtime 0, OS 3 (Unix)
    expect(gz.subarray(0, 4).toString('hex')).toBe('1f8b0800');
    expect(gz.readUInt32LE(4)).toBe(0);
    expect(gz[9]).toBe(3);

    const names = sh(`gzip -dc ${out} | cpio -it --quiet`, work).split('\n').filter(Boolean);
    expect(names).toEqual([
      'bin',
      'bin/tool',
      'bin/link-to-tool',
      'bin/sym',
      'etc',
      'etc/big',
      'etc/empty',
      'etc/odd',
      'dev',
      'dev/console',
      'dev/sda',
      'dev/fifo',
    ]);
    expect(res.entries).toBe(names.length);

    const x = join(work, 'x');
    mkdirSync(x);
    sh(`gzip -dc ${out} | cpio -idm --quiet --no-absolute-filenames`, x);
    const tool = statSync(join(x, 'bin/tool'));
    expect(tool.mode & 0o7777).toBe(0o4755);
    expect([tool.uid, tool.gid]).toEqual([1000, 1001]);
    expect(tool.mtimeMs / 1000).toBe(LINUXKIT_EPOCH); // not the tar's mtime: fixed
    expect(readFileSync(join(x, 'bin/tool'), 'utf8')).toBe('#!/bin/sh\necho x\n');
    const link = statSync(join(x, 'bin/link-to-tool'));
    expect(link.ino).toBe(tool.ino); // a real hard link
    expect(tool.nlink).toBe(2);
    expect(readlinkSync(join(x, 'bin/sym'))).toBe('tool');
    expect(
      createHash('sha256')
        .update(readFileSync(join(x, 'etc/big')))
        .digest('hex'),
    ).toBe(createHash('sha256').update(big).digest('hex'));
    expect(statSync(join(x, 'etc')).mode & 0o7777).toBe(0o700);
    expect(statSync(join(x, 'etc/empty')).size).toBe(0);
    const con = lstatSync(join(x, 'dev/console'));
    expect(con.isCharacterDevice()).toBe(true);
    expect([Math.floor(con.rdev / 256), con.rdev % 256]).toEqual([5, 1]);
    const sda = lstatSync(join(x, 'dev/sda'));
    expect(sda.isBlockDevice()).toBe(true);
    expect(sda.rdev).toBe(8 * 256);
    expect(lstatSync(join(x, 'dev/fifo')).isFIFO()).toBe(true);
    expect(() => statSync(join(x, 'boot'))).toThrow(); // boot/ is split off
  });

  it('is byte-identical when rebuilt, and follows SOURCE_DATE_EPOCH', async () => {
    const a = join(work, 'r1.img');
    const b = join(work, 'r2.img');
    await writeInitrd(tarOf(sample()), a);
    await writeInitrd(tarOf(sample()), b);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);

    const c = join(work, 'r3.img');
    const old = process.env.SOURCE_DATE_EPOCH;
    process.env.SOURCE_DATE_EPOCH = '1700000000';
    try {
      await writeInitrd(tarOf(sample()), c);
    } finally {
      if (old === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = old;
    }
    expect(readFileSync(a).equals(readFileSync(c))).toBe(false);
    const listing = sh(`gzip -dc ${c} | cpio -itv --quiet`, work);
    expect(listing).toMatch(/Nov 14\s+2023 bin\/tool/);
  });

  it('writes newc headers the kernel format wants: 4-byte alignment and the trailer', async () => {
    const out = join(work, 'h.img');
    await writeInitrd(tarOf(sample()), out);
    const raw = gunzipSync(readFileSync(out));
    expect(raw.subarray(0, 6).toString()).toBe('070701');
    expect(raw.length % 4).toBe(0);
    expect(raw.subarray(-(4 + 12)).toString('latin1')).toContain('TRAILER!!!');
  });

  it('keeps boot/ with splitBoot false and writes hard links as relative symlinks on request', async () => {
    const out = join(work, 's.img');
    const res = await writeInitrd(tarOf(sample()), out, { splitBoot: false, hardLinks: 'symlink' });
    expect(res.kernel).toBeUndefined();
    const x = join(work, 'xs');
    mkdirSync(x);
    sh(`gzip -dc ${out} | cpio -idm --quiet --no-absolute-filenames`, x);
    expect(readFileSync(join(x, 'boot/kernel')).equals(KERNEL)).toBe(true);
    expect(readlinkSync(join(x, 'bin/link-to-tool'))).toBe('tool');
  });

  it('accepts any async iterable of bytes, not only a stream', async () => {
    const chunks: Buffer[] = [];
    for await (const c of tarOf(sample())) chunks.push(c as Buffer);
    async function* gen() {
      for (const c of chunks) yield c;
    }
    const a = join(work, 'it1.img');
    const b = join(work, 'it2.img');
    await writeInitrd(gen(), a);
    await writeInitrd(tarOf(sample()), b);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
  });

  it('fails cleanly and leaves no file for a bad tar', async () => {
    const dir = join(work, 'bad');
    mkdirSync(dir);
    const out = join(dir, 'bad.img');
    await expect(writeInitrd(tarOf([{ name: '../escape', type: 'file', body: 'x' }]), out)).rejects.toThrow(/\.\./);
    await expect(writeInitrd(tarOf([{ name: 'a', type: 'link', linkname: 'missing' }]), out)).rejects.toThrow(
      /not earlier in the tar/,
    );
    const broken = Readable.from([Buffer.from('this is not a tar archive at all'.repeat(40))]);
    await expect(writeInitrd(broken, out)).rejects.toThrow();
    expect(readdirSync(dir)).toEqual([]);
  });
});
