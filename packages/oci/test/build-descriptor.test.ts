import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  missingBuildContent,
  parseBuildDescriptor,
  readBuildDescriptor,
  writeBuildDescriptor,
} from '../src/build-descriptor.ts';
import { blobPath } from '../src/store-paths.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('build descriptors', () => {
  const digest = `sha256:${'ab'.repeat(32)}`;

  it('validates descriptor files', () => {
    expect(parseBuildDescriptor(JSON.stringify({ digest, mediaType: 'm', size: 1, refs: ['a'] })).ok).toBe(true);
    expect(parseBuildDescriptor(JSON.stringify({ digest: 'sha256:zz', mediaType: 'm', size: 1, refs: [] }))).toEqual({
      ok: false,
      message: 'digest: expected sha256:<64 hex>',
    });
    expect(parseBuildDescriptor('{').ok).toBe(false);
    const absolute = { digest, mediaType: 'm', size: 1, refs: [], artifacts: [{ path: '/etc/passwd' }] };
    expect(parseBuildDescriptor(JSON.stringify(absolute))).toMatchObject({ ok: false, message: /^artifacts:/ });
  });

  it('reads what it writes, and names the content the store or the directory lacks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stele-descriptor-'));
    dirs.push(dir);
    const file = join(dir, 'out', 'descriptor.json');
    const d = { digest, mediaType: 'm', size: 1, refs: ['r'], artifacts: [{ path: 'x.iso' }] };
    expect(readBuildDescriptor(file)).toBeUndefined();
    await writeBuildDescriptor(file, d);
    expect(readBuildDescriptor(file)).toEqual({ ok: true, value: d });
    const store = join(dir, 'store');
    expect(missingBuildContent(d, dirname(file), store)).toBe(`${digest} is not in the store ${store}`);
    mkdirSync(dirname(blobPath(store, digest)), { recursive: true });
    writeFileSync(blobPath(store, digest), 'x');
    expect(missingBuildContent(d, dirname(file), store)).toMatch(/artifact x.iso is missing/);
    writeFileSync(join(dir, 'out', 'x.iso'), '');
    expect(missingBuildContent(d, dirname(file), store)).toBeUndefined();
  });
});
