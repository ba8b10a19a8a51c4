// `stele build` as the user runs it: flags, output, exit codes. (Image assembly and boots are
// tested in packages/image; these manifests need no images.)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/main.ts';
import { fakeIo } from './io.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'stele-cli-build-'));
  writeFileSync(
    join(dir, 'files.yml'),
    'files:\n  - path: etc/motd\n    contents: "hello"\n  - path: etc/issue\n    source: issue.txt\n',
  );
  writeFileSync(join(dir, 'issue.txt'), 'Stele\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function stele(...argv: string[]) {
  const io = { ...fakeIo({ STELE_CACHE: join(dir, 'store') }), cwd: dir };
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err() };
}

describe('stele build', () => {
  it('builds the tar format and prints what it wrote', async () => {
    const r = await stele('build', '--format', 'tar', '--dir', 'out', 'files.yml');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`tar: ${join(dir, 'out', 'files.tar')}\n`);
    const names = execFileSync('tar', ['-tf', join(dir, 'out', 'files.tar')], { encoding: 'utf8' });
    expect(names.trim().split('\n')).toEqual(expect.arrayContaining(['etc/motd', 'etc/issue']));
  });

  it('--format takes a comma-separated list too', async () => {
    const r = await stele('build', '--format', 'tar,floppy', '--dir', 'list', 'files.yml');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unknown format 'floppy'/);
    const ok = await stele('build', '--format', 'tar,tar', '--dir', 'list', 'files.yml');
    expect(ok.code, ok.err).toBe(0);
  });

  it('--dry-run --json prints the plan and writes nothing', async () => {
    const r = await stele('build', '--dry-run', '--json', '--dir', 'dry', 'files.yml');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ platform: 'linux/amd64', images: [], files: ['etc/motd', 'etc/issue'] });
    expect(existsSync(join(dir, 'dry'))).toBe(false);
  });

  it('--descriptor names a build record that is in the store', async () => {
    const r = await stele('build', '--format', 'tar', '--dir', 'd', '--descriptor', 'd/descriptor.json', 'files.yml');
    expect(r.code, r.err).toBe(0);
    const d = JSON.parse(execFileSync('cat', [join(dir, 'd', 'descriptor.json')], { encoding: 'utf8' }));
    expect(d.refs).toEqual([join(dir, 'd', 'files.tar')]);
    const blob = join(dir, 'store', 'blobs', 'sha256', d.digest.slice('sha256:'.length));
    expect(existsSync(blob)).toBe(true);
  });

  it('bad input: one clear line, exit 1, nothing written', async () => {
    const cases: [string[], RegExp][] = [
      [['--format', 'floppy', 'files.yml'], /unknown format 'floppy'/],
      [['--format', 'kernel+initrd', 'files.yml'], /no kernel: only the tar format/],
      [['--arch', 'sparc', 'files.yml'], /unknown arch 'sparc'/],
      [['nothere.yml'], /^stele: nothere\.yml: cannot read: no such file$/m],
    ];
    for (const [args, message] of cases) {
      const r = await stele('build', '--dir', 'bad', ...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.err).toMatch(message);
      expect(r.err.trim().split('\n')).toHaveLength(1);
    }
    expect(existsSync(join(dir, 'bad')) ? readdirSync(join(dir, 'bad')) : []).toEqual([]);
  });

  it('an invalid manifest: every error line starts with stele:, and no store is created', async () => {
    writeFileSync(join(dir, 'invalid.yml'), 'files:\n  - path: etc/x\n  - path: etc/y\n    mode: 0644\n');
    const io = { ...fakeIo({ STELE_CACHE: join(dir, 'fresh-store') }), cwd: dir };
    expect(await main(['build', '--format', 'tar', '--dir', 'bad', 'invalid.yml'], io)).toBe(1);
    const lines = io.err().trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).toMatch(/^stele: .*invalid\.yml:\d+:\d+: files\.\d/);
    expect(existsSync(join(dir, 'fresh-store'))).toBe(false);
  });
});
