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
 * directory. A read-only volume may only be bound with `ro` as the first (binds: only) option.
 */
export function substituteVolumes(
  entry: ImageEntry,
  volumes: ReadonlyMap<string, VolumeSection>,
  subject: string,
): ImageEntry {
  const volume = (name: string, field: string) => {
    const v = volumes.get(name);
    if (!v) throw new AssembleError(subject, field, `volume ${name} not found (declare it under volumes:)`);
    return v;
  };
  const readOnlyError = (name: string, field: string) =>
    new AssembleError(subject, field, `volume ${name} is read-only, but attempting to write into container read-write`);

  const binds = (list: string[] | null | undefined, field: 'binds' | 'binds.add') =>
    list?.map((bind, i) => {
      const parts = bind.split(':');
      const source = parts[0] ?? '';
      if (source.startsWith('/')) return bind;
      const v = volume(source, `${field}[${i}]`);
      if (v.readonly && parts[2] !== 'ro') throw readOnlyError(source, `${field}[${i}]`);
      return [`/${volumeDirs(source).merged}`, ...parts.slice(1)].join(':');
    });

  const mounts = entry.mounts?.map((m: MountSpec, i): MountSpec => {
    if (m.type !== 'bind' || (m.source ?? '').startsWith('/')) return m;
    const name = m.source ?? '';
    const v = volume(name, `mounts[${i}]`);
    if (v.readonly) {
      // the first of rw/ro among the options decides
      const first = (m.options ?? []).find((o) => o === 'rw' || o === 'ro');
      if (first !== 'ro') throw readOnlyError(name, `mounts[${i}]`);
    }
    return { ...m, source: `/${volumeDirs(name).merged}` };
  });

  const out: ImageEntry = { ...entry };
  if (entry.binds) out.binds = binds(entry.binds, 'binds');
  if (entry['binds.add']) out['binds.add'] = binds(entry['binds.add'], 'binds.add');
  if (entry.mounts) out.mounts = mounts;
  return out;
}
