/**
 * The OS manifest (LinuxKit's `linuxkit.yml`): exactly LinuxKit's keys and types, plus the
 * checks LinuxKit makes after its schema (unique service and volume names, references) and
 * those it leaves to build time (file entries, capabilities, binds, rlimits).
 */
import { z } from 'zod';
import { checkFilePath, checkOctalMode, checkVolumeBind, checkVolumeMount, type VolumeInfo } from '../checks.ts';
import type { PathSegment } from '../errors.ts';
import { parseImageRef } from '../image-ref.ts';
import { checkedString, imageRef, report, strict, stringOrInt } from './common.ts';
import { imageSchema } from './image.ts';

export const kernelSchema = strict({
  image: imageRef(true),
  cmdline: z.string(),
  binary: z.string(),
  tar: z.string(),
  ucode: z.string(),
}).partial();

const METADATA_FORMATS = ['json', 'yaml'];

export const fileSchema = strict({
  path: z.string(),
  directory: z.boolean(),
  symlink: z.string(),
  contents: z.string(),
  source: z.string(),
  metadata: z.string(),
  optional: z.boolean(),
  mode: z.string(),
  uid: stringOrInt,
  gid: stringOrInt,
})
  .partial()
  .superRefine((f, ctx) => {
    const badPath = f.path === undefined ? "file entry is missing 'path'" : checkFilePath(f.path);
    if (badPath) report(ctx, f.path === undefined ? [] : ['path'], badPath);
    if (f.mode !== undefined) {
      const bad = checkOctalMode(f.mode);
      if (bad) report(ctx, ['mode'], bad);
    }
    if (f.metadata !== undefined && !METADATA_FORMATS.includes(f.metadata)) {
      report(ctx, ['metadata'], `metadata must be "json" or "yaml"; got ${JSON.stringify(f.metadata)}`);
    }
    // What the entry is: at most one of these may be given.
    const kinds: Array<[key: string, present: boolean]> = [
      ['directory', f.directory === true],
      ['symlink', f.symlink !== undefined && f.symlink !== ''],
      ['contents', f.contents !== undefined],
      ['source', f.source !== undefined && f.source !== ''],
      ['metadata', f.metadata !== undefined && f.metadata !== ''],
    ];
    const given = kinds.filter(([, present]) => present).map(([k]) => k);
    if (given.length === 0) {
      report(ctx, [], 'file has no content: set one of contents, source, metadata, symlink or directory: true');
    } else if (given.length > 1) {
      const [first, second] = given as [string, string];
      report(ctx, [second], `'${first}' and '${second}' conflict: a file entry takes exactly one of them`, 'key');
    }
    if (f.optional === true && given[0] !== 'source') {
      report(ctx, ['optional'], "'optional' applies only to files with a 'source'", 'key');
    }
  });

/** Volume names: LinuxKit's pattern, but not empty. */
const VOLUME_NAME = /^[a-z0-9_-]+$/;
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;

export const volumeSchema = strict({
  name: z.string().superRefine((s, ctx) => {
    if (!VOLUME_NAME.test(s)) {
      report(
        ctx,
        [],
        s === '' ? 'volume name must not be empty' : `invalid volume name '${s}': use a-z, 0-9, '_' and '-'`,
      );
    }
  }),
  image: imageRef(true),
  readonly: z.boolean(),
  format: z.enum(['oci', 'filesystem']),
  platforms: z.array(
    checkedString((p) =>
      PLATFORM.test(p) ? undefined : `platform '${p}' must be OS/ARCH[/VARIANT], e.g. linux/amd64`,
    ),
  ),
})
  .partial()
  .required({ name: true });

/** Stele gives `trust` a meaning: images (by name) and orgs whose signatures must verify. */
export const trustSchema = strict({
  image: z.array(
    checkedString((s) => {
      const r = parseImageRef(s);
      return r.ok ? undefined : r.message;
    }),
  ),
  org: z.array(
    checkedString((s) =>
      /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/.test(s)
        ? undefined
        : `invalid org name '${s}': use lowercase letters and digits`,
    ),
  ),
}).partial();

const images = z.array(imageSchema);

export const osManifestSchema = strict({
  kernel: kernelSchema,
  init: z.array(imageRef()),
  onboot: images,
  onshutdown: images,
  services: images,
  trust: trustSchema,
  files: z.array(fileSchema),
  volumes: z.array(volumeSchema),
}).partial();

/** Duplicate `name`s in the list at `data[section]`, as [path, message] pairs. */
function duplicateNames(data: Record<string, unknown>, section: string, what: string): Array<[PathSegment[], string]> {
  const list = data[section];
  if (!Array.isArray(list)) return [];
  const first = new Map<string, number>();
  const found: Array<[PathSegment[], string]> = [];
  list.forEach((item: unknown, i) => {
    const name = item !== null && typeof item === 'object' ? (item as { name?: unknown }).name : undefined;
    if (typeof name !== 'string') return;
    const seen = first.get(name);
    if (seen === undefined) first.set(name, i);
    else found.push([[section, i, 'name'], `duplicate ${what} name '${name}' (also ${section}.${seen})`]);
  });
  return found;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const listOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Binds and bind mounts of every container whose source is a volume: declared, and read-only kept so. */
function volumeBinds(d: Record<string, unknown>): Array<[PathSegment[], string]> {
  const volumes = new Map<string, VolumeInfo>();
  for (const v of listOf(d.volumes)) {
    if (isRecord(v) && typeof v.name === 'string') volumes.set(v.name, { readonly: v.readonly === true });
  }
  const found: Array<[PathSegment[], string]> = [];
  for (const section of ['onboot', 'onshutdown', 'services']) {
    listOf(d[section]).forEach((entry, i) => {
      if (!isRecord(entry)) return;
      for (const key of ['binds', 'binds.add']) {
        listOf(entry[key]).forEach((bind, j) => {
          const bad = typeof bind === 'string' ? checkVolumeBind(bind, volumes) : undefined;
          if (bad) found.push([[section, i, key, j], bad]);
        });
      }
      listOf(entry.mounts).forEach((m, j) => {
        if (!isRecord(m)) return;
        const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
        const options = listOf(m.options).filter((o): o is string => typeof o === 'string');
        const bad = checkVolumeMount({ type: text(m.type), source: text(m.source), options }, volumes);
        if (bad) found.push([[section, i, 'mounts', j], bad]);
      });
    });
  }
  return found;
}

/**
 * Checks across entries, run on the raw data even when entries have other errors.
 * Services run side by side, so their names must differ; onboot and onshutdown steps run one
 * after another and may repeat a name (as in LinuxKit). Volume names must be unique, and a
 * bind of a volume needs the volume (LinuxKit checks this only when it builds).
 */
export function osCrossChecks(data: unknown): Array<[PathSegment[], string]> {
  if (!isRecord(data)) return [];
  return [
    ...duplicateNames(data, 'services', 'service'),
    ...duplicateNames(data, 'volumes', 'volume'),
    ...volumeBinds(data),
  ];
}

export type OsManifest = z.infer<typeof osManifestSchema>;
export type KernelConfig = z.infer<typeof kernelSchema>;
export type FileEntry = z.infer<typeof fileSchema>;
export type Volume = z.infer<typeof volumeSchema>;
export type Trust = z.infer<typeof trustSchema>;
