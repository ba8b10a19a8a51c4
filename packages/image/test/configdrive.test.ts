// Config drives with the real xorriso: the label a guest finds them by, the files as written,
// readable by the owner only, nothing staged left behind, and bad names refused.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnHostTools, writeConfigDrive } from '../src/index.ts';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'stele-configdrive-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('writeConfigDrive', () => {
  it('writes an ISO labelled cidata holding the files, mode 0600, and leaves nothing else', async () => {
    const out = join(root, 'a', 'config.iso');
    mkdirSync(join(root, 'a'));
    const userData = JSON.stringify({ swarm: { entries: { token: { content: 'SWMTKN-1-secret' } } } });
    await writeConfigDrive({
      out,
      files: { 'user-data': userData, 'openstack/latest/user_data': 'x' },
      tools: spawnHostTools(),
    });
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(root, 'a'))).toEqual(['config.iso']);
    expect(execFileSync('blkid', ['-o', 'value', '-s', 'LABEL', out], { encoding: 'utf8' }).trim()).toBe('cidata');
    const extracted = join(root, 'extracted');
    execFileSync('xorriso', ['-osirrox', 'on', '-indev', out, '-extract', '/', extracted], { stdio: 'ignore' });
    expect(readFileSync(join(extracted, 'user-data'), 'utf8')).toBe(userData);
    expect(readFileSync(join(extracted, 'openstack/latest/user_data'), 'utf8')).toBe('x');
  });

  it('gives the same bytes for the same files', async () => {
    const a = join(root, 'same-1.iso');
    const b = join(root, 'same-2.iso');
    for (const out of [a, b]) await writeConfigDrive({ out, files: { 'user-data': '{}' }, tools: spawnHostTools() });
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
  });

  it('refuses file names that leave the drive and bad labels', async () => {
    const out = join(root, 'bad.iso');
    const tools = spawnHostTools();
    await expect(writeConfigDrive({ out, files: { '../x': '' }, tools })).rejects.toThrow(/relative path/);
    await expect(writeConfigDrive({ out, files: { '/etc/x': '' }, tools })).rejects.toThrow(/relative path/);
    await expect(writeConfigDrive({ out, files: { x: '' }, label: 'a b', tools })).rejects.toThrow(/label/);
    expect(readdirSync(root)).not.toContain('bad.iso');
  });
});
