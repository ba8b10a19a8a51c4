// Real OCI images made by the tests themselves, straight into a store (no Docker): a compact entry
// notation for the pipeline tests over build-images.ts, which makes the layers and the image.
import type { Descriptor, Store } from '@stele/oci';
import { type LayerEntry, layerTar, storeImage } from './build-images.ts';

export type Entry =
  | { path: string; data: string | Buffer; mode?: number }
  | { path: string; dir: true; mode?: number }
  | { path: string; symlink: string }
  | { path: string; hardlink: string };

function layerEntry(e: Entry): LayerEntry {
  const path = e.path.replace(/\/$/, '');
  if ('data' in e) return { path, type: 'file', data: e.data, ...(e.mode !== undefined ? { mode: e.mode } : {}) };
  if ('dir' in e) return { path, type: 'dir', ...(e.mode !== undefined ? { mode: e.mode } : {}) };
  if ('symlink' in e) return { path, type: 'symlink', linkname: e.symlink };
  return { path, type: 'hardlink', linkname: e.hardlink };
}

export function tarOf(entries: Entry[]): Promise<Buffer> {
  return layerTar(entries.map(layerEntry));
}

/** An image of `layers` (each a list of entries), tagged `name` in the store. */
export function putImage(
  store: Store,
  name: string,
  layers: Entry[][],
  config: Record<string, unknown> = {},
  arch = 'amd64',
): Promise<Descriptor> {
  return storeImage(
    store,
    name,
    layers.map((l) => l.map(layerEntry)),
    config,
    arch,
  );
}
