// A `format: oci` volume: its image as an OCI image layout (image-layout spec v1) below the
// volume's lower directory, as LinuxKit's ImageOCITar writes it: oci-layout, blobs/,
// blobs/sha256/, each selected image's config, layers and manifest, the index blob, index.json.
import {
  type Descriptor,
  type Manifest,
  type Platform,
  parseDigest,
  parseManifest,
  REF_NAME_ANNOTATION,
  type Store,
} from '@stele/oci';
import type { EntryOrigin, LayoutEntry } from '../assemble/index.ts';
import { BuildError } from './errors.ts';
import type { ResolvedOciVolume } from './resolve.ts';

/** LinuxKit's `oci-layout` file, byte for byte (its cache package's `layoutFile`). */
export const OCI_LAYOUT_FILE = '{\n\t\t"imageLayoutVersion": "1.0.0"\n\t}';

/**
 * index.json as go-containerregistry marshals it for LinuxKit (json.MarshalIndent, three
 * spaces, Go's field order): one descriptor of `top`, named by `ref.name`.
 */
export function layoutIndexJson(top: Descriptor, refName: string, platform?: Platform): string {
  const desc = {
    mediaType: top.mediaType,
    size: top.size,
    digest: top.digest,
    annotations: { [REF_NAME_ANNOTATION]: refName },
    ...(platform ? { platform: goPlatform(platform) } : {}),
  };
  const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [desc] };
  return JSON.stringify(index, null, 3);
}

/** A platform with its fields in go-containerregistry's order. */
function goPlatform(p: Platform): Platform {
  return {
    architecture: p.architecture,
    os: p.os,
    ...(p['os.version'] ? { 'os.version': p['os.version'] } : {}),
    ...(p['os.features']?.length ? { 'os.features': p['os.features'] } : {}),
    ...(p.variant ? { variant: p.variant } : {}),
  };
}

/**
 * The entries of the volume's OCI layout, in LinuxKit's order, each named below `step.prefix`.
 * A blob two images share is written once. Blobs are streamed from the store (hostFile); each
 * must be there with its descriptor's size. A foreign layer (one with `urls`) the store does not
 * have is left out, as the copy from the registry left it out (the layout spec allows that).
 */
export async function ociLayoutEntries(
  store: Store,
  vol: ResolvedOciVolume,
  step: { prefix: string; origin: EntryOrigin },
  mtime: number,
): Promise<LayoutEntry[]> {
  const { prefix, origin } = step;
  const common = { uid: 0, gid: 0, mtime, origin };
  const file = (path: string, source: LayoutEntry['source']): LayoutEntry => ({
    path: `${prefix}${path}`,
    type: 'file',
    mode: 0o644,
    ...common,
    ...(source ? { source } : {}),
  });
  const dir = (path: string): LayoutEntry => ({ path: `${prefix}${path}`, type: 'dir', mode: 0o755, ...common });
  const bytes = (text: string): LayoutEntry['source'] => ({ kind: 'bytes', data: Buffer.from(text) });

  const blobs: LayoutEntry[] = [];
  const written = new Set<string>();
  const algorithms = new Set<string>(['sha256']);
  const addBlob = async (d: Descriptor, what: string, optional = false): Promise<void> => {
    if (written.has(d.digest)) return;
    if (!(await store.hasBlob({ digest: d.digest, size: d.size }))) {
      if (optional) return;
      throw new BuildError(
        `image ${vol.ref}: ${what} ${d.digest} (${d.size} bytes) is missing from the ${store.describe()}`,
      );
    }
    written.add(d.digest);
    const { algorithm, hex } = parseDigest(d.digest);
    algorithms.add(algorithm);
    blobs.push(file(`blobs/${algorithm}/${hex}`, { kind: 'hostFile', path: store.blobPath(d.digest) }));
  };

  for (const m of vol.manifests) {
    if (!(await store.hasManifest(m))) {
      throw new BuildError(`image ${vol.ref}: manifest ${m.digest} is missing from the ${store.describe()}`);
    }
    let parsed: Manifest;
    try {
      parsed = parseManifest(await store.fetchManifest(m), m.mediaType);
    } catch (err) {
      throw new BuildError(`image ${vol.ref}: manifest ${m.digest}: ${(err as Error).message}`);
    }
    if (parsed.kind !== 'manifest') {
      throw new BuildError(`image ${vol.ref}: ${m.digest} is an index, not an image manifest`);
    }
    await addBlob(parsed.manifest.config, 'config');
    for (const layer of parsed.manifest.layers) await addBlob(layer, 'layer', Boolean(layer.urls?.length));
    await addBlob(m, 'manifest');
  }
  // The index as it is, even when only some platforms were selected (a single manifest is already in).
  await addBlob(vol.top, 'index');

  const single =
    vol.manifests.length === 1 && vol.manifests[0]?.digest === vol.top.digest ? vol.manifests[0] : undefined;
  return [
    file('oci-layout', bytes(OCI_LAYOUT_FILE)),
    dir('blobs'),
    ...[...algorithms].map((a) => dir(`blobs/${a}`)),
    ...blobs,
    file('index.json', bytes(layoutIndexJson(vol.top, vol.name, single?.platform))),
  ];
}
