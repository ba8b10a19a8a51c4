import { checkVolumeBind, checkVolumeMount } from '@stele/manifest';
import { AssembleError } from './errors.ts';
import type { ImageEntry, MountSpec, VolumeSection } from './types.ts';

/** Where a volume is assembled and mounted: containers/volumes/<name>/{lower,tmp,merged}. */
export function volumeDirs(name: string) {
  const base = `containers/volumes/${name}`;
  return { base, lower: `${base}/lower`, tmp: `${base}/tmp`, merged: `${base}/merged` };
}

const VOLUME_NAME = /^[a-z0-9_-]*$/;

export function checkVolumes(volumes: VolumeSection[]): Map<string, VolumeSection> {
  const byName = new Map<string, VolumeSection>();
  volumes.forEach((v, i) => {
    if (!VOLUME_NAME.test(v.name)) {
      throw new AssembleError(`volumes[${i}]`, 'name', `invalid volume name: ${v.name} (use a-z, 0-9, _ and -)`);
    }
    if (byName.has(v.name)) throw new AssembleError(`volumes[${i}]`, 'name', `duplicate volume name: ${v.name}`);
    byName.set(v.name, v);
  });
  return byName;
}

/**
 * A bind source that does not start with '/' names a volume: it becomes the volume's merged
 * directory. Which binds are allowed (declared volumes, read-only ones bound read-only) is the
 * manifest's rule, checked again here for manifests that were not validated.
 */
export function substituteVolumes(
  entry: ImageEntry,
  volumes: ReadonlyMap<string, VolumeSection>,
  subject: string,
): ImageEntry {
  const binds = (list: string[] | null | undefined, field: 'binds' | 'binds.add') =>
    list?.map((bind, i) => {
      const bad = checkVolumeBind(bind, volumes);
      if (bad) throw new AssembleError(subject, `${field}[${i}]`, bad);
      const [source = '', ...rest] = bind.split(':');
      return source.startsWith('/') ? bind : [`/${volumeDirs(source).merged}`, ...rest].join(':');
    });

  const mounts = entry.mounts?.map((m: MountSpec, i): MountSpec => {
    const bad = checkVolumeMount({ type: m.type, source: m.source, options: m.options ?? undefined }, volumes);
    if (bad) throw new AssembleError(subject, `mounts[${i}]`, bad);
    if (m.type !== 'bind' || (m.source ?? '').startsWith('/')) return m;
    return { ...m, source: `/${volumeDirs(m.source ?? '').merged}` };
  });

  const out: ImageEntry = { ...entry };
  if (entry.binds) out.binds = binds(entry.binds, 'binds');
  if (entry['binds.add']) out['binds.add'] = binds(entry['binds.add'], 'binds.add');
  if (entry.mounts) out.mounts = mounts;
  return out;
}
