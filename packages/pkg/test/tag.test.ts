import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gitCli } from '../src/git.ts';
import { applyTagTemplate, packageTag, parseExtraSource } from '../src/tag.ts';
import { gitRepo } from './fixtures.ts';

const git = gitCli();
let repo: string;
let fixture: ReturnType<typeof gitRepo>;

const sh = (args: string[]): string => fixture.sh(args);
const write = (path: string, text: string) => fixture.write(path, text);
const commitAll = () => fixture.commit();
const treeOf = (path: string) => sh(['rev-parse', `HEAD:${path}`]);
const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

beforeEach(() => {
  fixture = gitRepo('stele-tag-');
  repo = fixture.root;
  write('pkg/sshd/build.yml', 'image: sshd\n');
  write('pkg/sshd/Dockerfile', 'FROM scratch\nCOPY etc /etc\n');
  write('pkg/sshd/etc/motd', 'hello\n');
  write('pkg/common/lib.sh', 'echo lib\n');
  write('pkg/outer/build.yml', 'image: outer\n');
  write('pkg/outer/inner/build.yml', 'image: inner\n');
  commitAll();
});
afterEach(() => rmSync(repo, { recursive: true, force: true }));

describe('package tags (LinuxKit rules)', () => {
  it('a clean package is tagged with the git tree hash of its directory', async () => {
    const t = await packageTag(join(repo, 'pkg/sshd'), {}, git);
    expect(t).toMatchObject({ hash: treeOf('pkg/sshd'), tag: treeOf('pkg/sshd'), dirty: false });
  });

  it('the top-level directory uses the commit root tree', async () => {
    const t = await packageTag(repo, {}, git);
    expect(t.hash).toBe(sh(['show', '-s', '--format=%T', 'HEAD']));
  });

  it('a modified tracked file makes it <tree>-dirty-<7 hex of sha256 over file contents>', async () => {
    write('pkg/sshd/etc/motd', 'changed\n');
    const t = await packageTag(join(repo, 'pkg/sshd'), {}, git);
    // git ls-files order inside pkg/sshd: Dockerfile, build.yml, etc/motd
    const content = sha256(['FROM scratch\nCOPY etc /etc\n', 'image: sshd\n', 'changed\n'].join(''));
    expect(t.hash).toBe(`${treeOf('pkg/sshd')}-dirty-${content.slice(0, 7)}`);
    expect(t.dirty).toBe(true);
  });

  it('an untracked file makes it dirty; an ignored one does not', async () => {
    write('.gitignore', '*.log\n');
    commitAll();
    write('pkg/sshd/build.log', 'noise');
    expect((await packageTag(join(repo, 'pkg/sshd'), {}, git)).dirty).toBe(false);
    write('pkg/sshd/new.conf', 'x');
    const t = await packageTag(join(repo, 'pkg/sshd'), {}, git);
    expect(t.dirty).toBe(true);
    expect(t.hash.startsWith(`${treeOf('pkg/sshd')}-dirty-`)).toBe(true);
  });

  it('a change elsewhere in the repository leaves the tag alone', async () => {
    const before = await packageTag(join(repo, 'pkg/sshd'), {}, git);
    write('pkg/common/lib.sh', 'echo other\n');
    write('README', 'x');
    expect(await packageTag(join(repo, 'pkg/sshd'), {}, git)).toEqual(before);
  });

  it('extra-sources mix their tree hashes in with sha1, and record the build-context sources', async () => {
    const t = await packageTag(join(repo, 'pkg/sshd'), { extraSources: ['../common:/common'] }, git);
    expect(t.hash).toBe(sha1(treeOf('pkg/sshd') + treeOf('pkg/common')));
    expect(t.sources).toEqual([
      { src: join(repo, 'pkg/sshd'), dst: '/' },
      { src: join(repo, 'pkg/common'), dst: '/common' },
    ]);
  });

  it('an uncommitted change inside an extra source makes the tag dirty (LinuxKit misses it)', async () => {
    const clean = await packageTag(join(repo, 'pkg/sshd'), { extraSources: ['../common:/common'] }, git);
    write('pkg/common/lib.sh', 'echo changed\n');
    const t = await packageTag(join(repo, 'pkg/sshd'), { extraSources: ['../common:/common'] }, git);
    expect(t.dirty).toBe(true);
    expect(t.hash.startsWith(`${clean.hash}-dirty-`)).toBe(true);
  });

  it('nested packages: the inner has its own tree; a change inside it dirties both', async () => {
    const inner = await packageTag(join(repo, 'pkg/outer/inner'), {}, git);
    expect(inner.hash).toBe(treeOf('pkg/outer/inner'));
    expect((await packageTag(join(repo, 'pkg/outer'), {}, git)).hash).toBe(treeOf('pkg/outer'));
    write('pkg/outer/inner/build.yml', 'image: inner2\n');
    expect((await packageTag(join(repo, 'pkg/outer'), {}, git)).dirty).toBe(true);
    expect((await packageTag(join(repo, 'pkg/outer/inner'), {}, git)).dirty).toBe(true);
  });

  it('build args change the tag, independent of their order', async () => {
    const plain = await packageTag(join(repo, 'pkg/sshd'), {}, git);
    const a = await packageTag(join(repo, 'pkg/sshd'), { buildArgs: ['A=1', 'B=2'] }, git);
    const b = await packageTag(join(repo, 'pkg/sshd'), { buildArgs: ['B=2', 'A=1'] }, git);
    const c = await packageTag(join(repo, 'pkg/sshd'), { buildArgs: ['A=1', 'B=3'] }, git);
    expect(a.hash).toBe(b.hash);
    expect(a.hash).not.toBe(plain.hash);
    expect(c.hash).not.toBe(a.hash);
    expect(a.hash).toMatch(/^[0-9a-f]{40}$/);
  });

  it('a Dockerfile outside the package directory changes the tag when it changes', async () => {
    write('docker/sshd.Dockerfile', 'FROM scratch\n');
    commitAll();
    const inputs = { dockerfile: '../../docker/sshd.Dockerfile' };
    const before = await packageTag(join(repo, 'pkg/sshd'), inputs, git);
    expect(before.hash).not.toBe(treeOf('pkg/sshd'));
    write('docker/sshd.Dockerfile', 'FROM scratch\nLABEL x=y\n');
    const after = await packageTag(join(repo, 'pkg/sshd'), inputs, git);
    expect(after.hash).not.toBe(before.hash);
    // The Dockerfile inside the package is already covered by the tree hash: nothing mixed in.
    expect((await packageTag(join(repo, 'pkg/sshd'), { dockerfile: 'Dockerfile' }, git)).hash).toBe(treeOf('pkg/sshd'));
  });

  it('tag templates wrap the hash', async () => {
    const t = await packageTag(join(repo, 'pkg/sshd'), { tag: 'v1.2-{{.Hash}}' }, git);
    expect(t.tag).toBe(`v1.2-${treeOf('pkg/sshd')}`);
    expect(applyTagTemplate('{{ .Hash }}-x', 'abc')).toBe('abc-x');
    expect(() => applyTagTemplate('{{.Version}}', 'abc')).toThrow(/unknown template field \{\{\.Version\}\}/);
  });

  it('refuses a directory outside git and bad extra-sources', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'stele-nogit-'));
    try {
      await expect(packageTag(outside, {}, git)).rejects.toThrow(/not inside a git work tree/);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
    expect(() => parseExtraSource(repo, 'nocolon')).toThrow(/SRC:DST/);
  });

  it('an uncommitted new package has no tree yet: a clear error', async () => {
    write('pkg/fresh/build.yml', 'image: fresh\n');
    await expect(packageTag(join(repo, 'pkg/fresh'), {}, git)).rejects.toThrow(/not committed/);
  });
});
