// `files: [{path: …, metadata: json|yaml}]`: the manifest itself, written into the image, with the
// image references of kernel, init, onboot, onshutdown and services expanded (docker.io/…), in the
// field order of LinuxKit's Moby type.

import { stringify } from 'yaml';
import { type GoJsonValue, goJsonIndent } from './goJson.ts';
import { expandReference } from './refs.ts';
import type { FileSection, ImageEntry, OsManifest, VolumeSection } from './types.ts';

type Obj = { [key: string]: GoJsonValue };

// ImageConfig members in LinuxKit's struct order.
const IMAGE_FIELDS = [
  'capabilities',
  'capabilities.add',
  'ambient',
  'mounts',
  'binds',
  'binds.add',
  'devices',
  'tmpfs',
  'command',
  'env',
  'cwd',
  'net',
  'pid',
  'ipc',
  'uts',
  'userns',
  'hostname',
  'readonly',
  'maskedPaths',
  'readonlyPaths',
  'uid',
  'gid',
  'additionalGids',
  'noNewPrivileges',
  'oomScoreAdj',
  'rootfsPropagation',
  'cgroupsPath',
  'resources',
  'sysctl',
  'rlimits',
  'uidMappings',
  'gidMappings',
  'annotations',
  'runtime',
] as const;
/** Plain string members: omitted when empty. The others are omitted only when absent. */
const TEXT_FIELDS = new Set(['cwd', 'net', 'pid', 'ipc', 'uts', 'userns', 'hostname']);

function image(entry: ImageEntry, expand: (r: string) => string): Obj {
  const out: Obj = { name: entry.name, image: expand(entry.image) };
  for (const key of IMAGE_FIELDS) {
    const v = entry[key];
    if (v === undefined || v === null || (TEXT_FIELDS.has(key) && v === '')) continue;
    out[key] = v as GoJsonValue;
  }
  return out;
}

function file(f: FileSection): Obj {
  return {
    path: f.path,
    directory: !!f.directory,
    symlink: f.symlink || undefined,
    contents: f.contents ?? undefined,
    source: f.source || undefined,
    metadata: f.metadata || undefined,
    optional: !!f.optional,
    mode: f.mode === undefined || f.mode === '' ? undefined : String(f.mode),
    uid: f.uid ?? undefined,
    gid: f.gid ?? undefined,
  };
}

function volume(v: VolumeSection): Obj {
  return {
    name: v.name,
    image: v.image || undefined,
    readonly: v.readonly || undefined,
    format: v.format || undefined,
    platforms: v.platforms && v.platforms.length > 0 ? v.platforms : undefined,
  };
}

/** The manifest in Moby field order; absent lists are null (JSON) as Go writes nil slices. */
export function mobyDocument(m: OsManifest, expand: (ref: string) => string = expandReference): Obj {
  const k = m.kernel ?? {};
  return {
    kernel: {
      image: k.image ? expand(k.image) : '',
      cmdline: k.cmdline || undefined,
      binary: k.binary || undefined,
      tar: k.tar ?? undefined,
      ucode: k.ucode ?? undefined,
    },
    init: m.init ? m.init.map(expand) : null,
    onboot: m.onboot ? m.onboot.map((e) => image(e, expand)) : null,
    onshutdown: m.onshutdown ? m.onshutdown.map((e) => image(e, expand)) : null,
    services: m.services ? m.services.map((e) => image(e, expand)) : null,
    files: m.files ? m.files.map(file) : null,
    volumes: m.volumes ? m.volumes.map(volume) : null,
  };
}

function dropUndefined(v: GoJsonValue): unknown {
  if (Array.isArray(v)) return v.map(dropUndefined);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, val] of Object.entries(v)) if (val !== undefined) out[key] = dropUndefined(val);
    return out;
  }
  return v;
}

/**
 * The bytes of a metadata file. `json` is Go's MarshalIndent of the document (4 spaces); `yaml`
 * is the same document as YAML with absent lists as [] (not byte-identical to Go's yaml.v2).
 */
export function manifestMetadata(m: OsManifest, format: string, expand?: (ref: string) => string): Uint8Array {
  const doc = mobyDocument(m, expand);
  switch (format) {
    case 'json':
      return new TextEncoder().encode(goJsonIndent(doc));
    case 'yaml': {
      const y = dropUndefined(doc) as Record<string, unknown>;
      for (const key of ['init', 'onboot', 'onshutdown', 'services', 'files', 'volumes']) y[key] ??= [];
      return new TextEncoder().encode(stringify(y, { indentSeq: false, lineWidth: 0 }));
    }
    default:
      throw new Error(`unsupported metadata type: ${format} (use json or yaml)`);
  }
}
