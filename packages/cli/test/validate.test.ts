import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/main.ts';
import { fakeIo } from './io.ts';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function workdir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'stele-validate-'));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

async function validate(argv: string[], cwd: string) {
  const io = { ...fakeIo(), cwd };
  const code = await main(['validate', ...argv], io);
  return { code, out: io.out(), err: io.err() };
}

const GOOD_OS = 'init: [linuxkit/init:abc]\nservices:\n  - name: a\n    image: alpine:3.19\n';
const BAD_OS =
  'services:\n  - name: a\n    image: alpine:3.19\n    readonly: "yes"\n    privileged: true\n  - name: a\n    image: alpine\n';

describe('stele validate', () => {
  it('exits 0 and says so when every file is valid', async () => {
    const cwd = workdir({ 'os.yml': GOOD_OS, 'build.yml': 'image: foo\n' });
    const r = await validate(['os.yml', 'build.yml'], cwd);
    expect(r).toMatchObject({ code: 0, out: '' });
    expect(r.err).toBe('2 files valid (1 os, 1 pkg)\n');
  });

  it('prints every error of every file as FILE:LINE:COL: path: message and exits 1', async () => {
    const cwd = workdir({ 'bad.yml': BAD_OS, 'good.yml': GOOD_OS, 'build.yml': 'org: x\n' });
    const r = await validate(['bad.yml', 'good.yml', 'build.yml'], cwd);
    expect(r.code).toBe(1);
    expect(r.out.trim().split('\n')).toEqual([
      'bad.yml:4:15: services.0.readonly: expected true or false, got a string ("yes")',
      "bad.yml:5:5: services.0.privileged: unknown key 'privileged'",
      "bad.yml:6:11: services.1.name: duplicate service name 'a' (also services.0)",
      "build.yml:1:1: image: missing required key 'image'",
    ]);
    expect(r.err).toBe('4 errors in 2 of 3 files\n');
  });

  it('--json prints the error list', async () => {
    const cwd = workdir({ 'bad.yml': BAD_OS });
    const r = await validate(['--json', 'bad.yml'], cwd);
    expect(r.code).toBe(1);
    const errors = JSON.parse(r.out) as unknown[];
    expect(errors).toHaveLength(3);
    expect(errors[0]).toEqual({
      file: 'bad.yml',
      line: 4,
      col: 15,
      path: 'services.0.readonly',
      message: 'expected true or false, got a string ("yes")',
    });
    const ok = await validate(['--json', 'bad.yml'], workdir({ 'bad.yml': GOOD_OS }));
    expect(ok).toMatchObject({ code: 0, out: '[]\n' });
  });

  it('--kind overrides detection from the name', async () => {
    const cwd = workdir({ 'build.yml': GOOD_OS });
    expect((await validate(['build.yml'], cwd)).code).toBe(1);
    expect((await validate(['--kind', 'os', 'build.yml'], cwd)).code).toBe(0);
  });

  it('detects a fleet by its content', async () => {
    const cwd = workdir({ 'prod.yml': 'name: lab\nimage: os.yml\nhosts: 1\nprovider: {type: qemu}\n' });
    const r = await validate(['prod.yml'], cwd);
    expect(r).toMatchObject({ code: 0, err: '1 file valid (1 fleet)\n' });
  });

  it('an unreadable file is an error, the others are still checked', async () => {
    const cwd = workdir({ 'good.yml': GOOD_OS });
    const r = await validate(['missing.yml', 'good.yml'], cwd);
    expect(r.code).toBe(1);
    expect(r.out).toBe('missing.yml: cannot read: no such file\n');
  });

  it('echoes no terminal controls: text and --json escape them', async () => {
    const cwd = workdir({ 'esc.yml': 'services:\n  - name: "a\\e]0;t\\a\\e[2J\\u202e"\n    image: alpine\n' });
    const text = await validate(['esc.yml'], cwd);
    expect(text.code).toBe(1);
    expect(text.out).toContain("name 'a\\u001b]0;t\\u0007\\u001b[2J\\u202e'");
    const json = await validate(['--json', 'esc.yml'], cwd);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the characters the test looks for
    expect(json.out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect((JSON.parse(json.out) as { message: string }[])[0]?.message).toContain('a\u001b]0;t\u0007\u001b[2J\u202e');
  });

  it('stops reading at the size limit and says what it is', async () => {
    const r = await validate(['/dev/zero'], workdir({}));
    expect(r).toMatchObject({ code: 1, out: '/dev/zero: file is larger than 1 MiB, the limit for a manifest\n' });
  });

  it('usage errors exit 2', async () => {
    const cwd = workdir({});
    const none = await validate([], cwd);
    expect(none.code).toBe(2);
    const kind = await validate(['--kind', 'k8s', 'x.yml'], cwd);
    expect(kind.code).toBe(2);
    expect(kind.err).toMatch(/--kind must be one of os, pkg, fleet/);
  });

  it('validates the example fleet in the repository', async () => {
    const r = await validate(['fleets/swarm-worker/os.yml', 'fleets/swarm-worker/prod/fleet.yml'], repo);
    expect(r).toMatchObject({ code: 0, out: '' });
  });
});
