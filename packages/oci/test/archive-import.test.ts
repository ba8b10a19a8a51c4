// `stele cache import`'s reader: archives that share blobs with the store import again and
// again, concurrently too; every refusal (a cut tar, a blob that is not what its name says, a
// missing blob, JSON that does not parse or has the wrong shape) is an ArchiveError naming the
// file and the problem, never a stream error thrown past us.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';
import { exportArchive, importArchive } from '../src/archive.ts';
import { sha256 } from '../src/digest.ts';
import { MediaType } from '../src/mediatypes.ts';
import { Store } from '../src/store.ts';
import { ArchiveError } from '../src/tarentries.ts';
import { makeImage, tarOf } from './helpers/images.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'stele-archive-import-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** An OCI layout archive of one image named `name`, made by exportArchive. */
async function archiveOf(name: string, opts: { seed?: string; layerSizes?: number[] } = {}) {
  const dir = tmp();
  const store = await Store.open(join(dir, 'store'));
  const img = await makeImage(store, name, opts);
  const file = join(dir, 'image.tar');
  await exportArchive(store, [name], file);
  return { file, img };
}

/** A tar of the given entries (name → contents). */
async function tarFile(entries: [string, Buffer | string][]): Promise<string> {
  const file = join(tmp(), 'crafted.tar');
  writeFileSync(file, await tarOf(Object.fromEntries(entries.map(([name, data]) => [name, Buffer.from(data)]))));
  return file;
}

async function refused(file: string, message: RegExp): Promise<void> {
  const store = await Store.open(join(tmp(), 'store'));
  const err = await importArchive(store, file).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ArchiveError);
  expect((err as Error).message).toMatch(message);
}

describe('importing blobs the store already has', () => {
  it('the same archive twice', async () => {
    const { file } = await archiveOf('docker.io/t/a:1', { layerSizes: [200_000, 3000] });
    const store = await Store.open(join(tmp(), 'store'));
    expect(await importArchive(store, file)).toEqual({ names: ['docker.io/t/a:1'], blobs: 4 });
    expect(await importArchive(store, file)).toEqual({ names: ['docker.io/t/a:1'], blobs: 4 });
  });

  it('two images that share a layer, and an export → import round trip', async () => {
    const dir = tmp();
    const src = await Store.open(join(dir, 'src'));
    const a = await makeImage(src, 'docker.io/t/a:1', { layerSizes: [100_000] });
    // b: a's layer under another config.
    const cfg = await src.writeBlob(Buffer.from('{"architecture":"amd64","os":"linux","config":{}}'));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, ...cfg },
        layers: a.layers,
      }),
    );
    await src.pushManifest(
      { mediaType: MediaType.OciManifest, digest: sha256(manifest), size: manifest.length },
      manifest,
      ['docker.io/t/b:1'],
    );
    await exportArchive(src, ['docker.io/t/a:1'], join(dir, 'a.tar'));
    await exportArchive(src, ['docker.io/t/b:1'], join(dir, 'b.tar'));
    const store = await Store.open(join(tmp(), 'store'));
    expect((await importArchive(store, join(dir, 'a.tar'))).names).toEqual(['docker.io/t/a:1']);
    expect((await importArchive(store, join(dir, 'b.tar'))).names).toEqual(['docker.io/t/b:1']);
    // Exporting what the store now holds and importing it again changes nothing.
    await exportArchive(store, ['docker.io/t/a:1', 'docker.io/t/b:1'], join(dir, 'both.tar'));
    expect(await importArchive(store, join(dir, 'both.tar'))).toEqual({
      names: ['docker.io/t/a:1', 'docker.io/t/b:1'],
      blobs: 5,
    });
  });

  it('three imports of one archive at the same time', async () => {
    const { file } = await archiveOf('docker.io/t/c:1', { layerSizes: [300_000, 200_000, 100_000, 50_000, 20_000] });
    const root = join(tmp(), 'store');
    const results = await Promise.all([1, 2, 3].map(() => Store.open(root).then((s) => importArchive(s, file))));
    for (const r of results) expect(r).toEqual({ names: ['docker.io/t/c:1'], blobs: 7 });
  });
});

describe('refusals', () => {
  it('an archive cut short (head -c 5000)', async () => {
    const { file } = await archiveOf('docker.io/t/a:1');
    const cut = join(tmp(), 'cut.tar');
    writeFileSync(cut, readFileSync(file).subarray(0, 5000));
    await refused(cut, new RegExp(`^cannot import ${cut}: the tar is cut short \\(it ends inside an entry\\)$`));
  });

  it('a file that is not a tar', async () => {
    const file = join(tmp(), 'text.tar');
    writeFileSync(file, 'just some text, not a tar at all\n'.repeat(40));
    await refused(file, /^cannot import .*text\.tar: not a tar, or a damaged one/);
  });

  // Both found by the fuzz run (packages/image/test/fuzz-readers.test.ts): tar-stream hands on
  // an entry whose stream never ends for each of them.
  it('a header whose size field does not read as a number', async () => {
    const { file } = await archiveOf('docker.io/t/a:1');
    const bytes = readFileSync(file);
    const at = bytes.indexOf(Buffer.from('blobs/sha256/'));
    bytes.write('\xb00000000013 ', at + 124, 'latin1'); // neither octal nor base-256
    bytes.fill(0x20, at + 148, at + 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += bytes[at + i] ?? 0;
    bytes.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'latin1');
    const bad = join(tmp(), 'size.tar');
    writeFileSync(bad, bytes);
    await refused(bad, /not a tar, or a damaged one/);
  });

  it('an entry of type directory that claims contents', async () => {
    const p = pack();
    p.entry({ name: 'index.json', type: 'directory', size: 0 });
    p.entry({ name: 'oci-layout' }, '{"imageLayoutVersion":"1.0.0"}');
    p.finalize();
    const chunks: Buffer[] = [];
    for await (const c of p) chunks.push(c as Buffer);
    const bytes = Buffer.concat(chunks);
    bytes.write('00000001000\0', 124, 'latin1'); // the directory now claims 512 bytes
    bytes.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += bytes[i] ?? 0;
    bytes.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const file = join(tmp(), 'dir.tar');
    writeFileSync(file, bytes);
    await refused(file, /cannot import/);
  });

  it('a blob whose contents are not what its name says', async () => {
    const good = Buffer.from('layer contents');
    const file = await tarFile([
      ['oci-layout', '{"imageLayoutVersion":"1.0.0"}'],
      [`blobs/sha256/${sha256(good).slice(7)}`, 'other contents'],
      ['index.json', '{"schemaVersion":2,"manifests":[]}'],
    ]);
    await refused(file, new RegExp(`blobs/sha256/${sha256(good).slice(7)} does not hold what its name says`));
  });

  it('index.json naming a manifest the archive lacks', async () => {
    const missing = sha256(Buffer.from('absent manifest'));
    const index = {
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: missing, size: 15 }],
    };
    const file = await tarFile([['index.json', JSON.stringify(index)]]);
    await refused(file, new RegExp(`blob ${missing} \\(of ${missing}\\) is missing`));
  });

  it('index.json that is not JSON, or not an index', async () => {
    await refused(
      await tarFile([['index.json', "{'manifests': []}"]]),
      /index\.json: manifest is not valid JSON \(line 1, column 2/,
    );
    await refused(
      await tarFile([['index.json', '{"schemaVersion":2,"manifests":[{"digest":1}]}']]),
      /index\.json: manifests\[0\]/,
    );
    await refused(await tarFile([['index.json', '[]']]), /index\.json: manifest is not a JSON object/);
  });

  it('a manifest in the archive that is not JSON', async () => {
    const bad = Buffer.from('{"schemaVersion": 2, "config": ');
    const index = {
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(bad), size: bad.length }],
    };
    const file = await tarFile([
      [`blobs/sha256/${sha256(bad).slice(7)}`, bad],
      ['index.json', JSON.stringify(index)],
    ]);
    await refused(file, new RegExp(`${sha256(bad)}: manifest is not valid JSON`));
  });

  it('docker save archives with a manifest.json of the wrong shape', async () => {
    await refused(await tarFile([['manifest.json', '{"not": "a list"}']]), /manifest\.json is not a list/);
    await refused(
      await tarFile([['manifest.json', '[{"Config": 7, "Layers": []}]']]),
      /manifest\.json\[0\]\.Config is not a file name/,
    );
    await refused(
      await tarFile([['manifest.json', '[{"Config": "c.json", "Layers": "l"}]']]),
      /\.Layers is not a list/,
    );
    await refused(
      await tarFile([['manifest.json', '[{"Config": "c.json", "Layers": []}']]),
      /manifest\.json is not valid JSON/,
    );
    await refused(
      await tarFile([['manifest.json', '[{"Config": "c.json", "Layers": []}]']]),
      /lacks the config c\.json/,
    );
    await refused(
      await tarFile([
        ['c.json', '{"os": "linux"'],
        ['manifest.json', '[{"Config": "c.json", "Layers": []}]'],
      ]),
      /the config c\.json is not valid JSON/,
    );
    await refused(
      await tarFile([
        ['c.json', '{"os": "linux"}'],
        ['manifest.json', '[{"Config": "c.json", "Layers": [], "RepoTags": ["UPPER/Case"]}]'],
      ]),
      /manifest\.json: RepoTags: repository name in 'UPPER\/Case' must be lowercase/,
    );
  });
});
