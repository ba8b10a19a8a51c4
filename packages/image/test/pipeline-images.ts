// Real OCI images made by the tests themselves, straight into a store (no Docker): layers are
// gzip'd tars of the entries given, the config carries the platform and the image config.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { type Descriptor, MediaType, type Store, sha256 } from '@stele/oci';
import { type Header, pack } from 'tar-stream';

export type Entry =
  | { path: string; data: string | Buffer; mode?: number }
  | { path: string; dir: true; mode?: number }
  | { path: string; symlink: string }
  | { path: string; hardlink: string };

export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const done = (async () => {
    const chunks: Buffer[] = [];
    for await (const c of p) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  })();
  for (const e of entries) {
    const base = { name: e.path, mtime: new Date(1_600_000_000_000), uid: 0, gid: 0 };
    if ('data' in e) {
      const data = Buffer.from(e.data);
      await new Promise<void>((res, rej) =>
        p.entry({ ...base, mode: e.mode ?? 0o644, size: data.length } as Header, data, (err) =>
          err ? rej(err) : res(),
        ),
      );
    } else if ('dir' in e) p.entry({ ...base, type: 'directory', mode: e.mode ?? 0o755 } as Header);
    else if ('symlink' in e) p.entry({ ...base, type: 'symlink', linkname: e.symlink, mode: 0o777 } as Header);
    else p.entry({ ...base, type: 'link', linkname: e.hardlink, mode: 0o644 } as Header);
  }
  p.finalize();
  return done;
}

/** An image of `layers` (each a list of entries), tagged `name` in the store. */
export async function putImage(
  store: Store,
  name: string,
  layers: Entry[][],
  config: Record<string, unknown> = {},
  arch = 'amd64',
): Promise<Descriptor> {
  const descs: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const entries of layers) {
    const tar = await tarOf(entries);
    diffIds.push(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
    const w = await store.writeBlob(gzipSync(tar, { level: 1 }));
    descs.push({ mediaType: MediaType.OciLayerGzip, ...w });
  }
  const cfg = Buffer.from(
    JSON.stringify({ architecture: arch, os: 'linux', config, rootfs: { type: 'layers', diff_ids: diffIds } }),
  );
  const configDesc = { mediaType: MediaType.OciConfig, ...(await store.writeBlob(cfg)) };
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers: descs }),
  );
  const descriptor = { mediaType: MediaType.OciManifest, digest: sha256(manifest), size: manifest.length };
  await store.pushManifest(descriptor, manifest, [name]);
  return descriptor;
}
