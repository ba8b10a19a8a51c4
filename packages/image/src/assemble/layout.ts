// The initrd of an OS manifest as an ordered plan (LinuxKit's moby/build Build and ImageBundle
// rules): kernel, init images, volumes, onboot, onshutdown and service bundles, then files.

import { LINUXKIT_EPOCH } from '../formats/epoch.ts';
import { dirEntry, type EntryDefaults, type EntryOrigin, fileEntry, type LayoutStep, prefixDirs } from './entries.ts';
import { AssembleError } from './errors.ts';
import { planFiles } from './files.ts';
import { containerIdMap } from './ids.ts';
import { manifestMetadata } from './metadata.ts';
import { expandReference } from './refs.ts';
import {
  type ContainerConfig,
  containerConfig,
  type LinuxkitRuntime,
  type OciMount,
  runtimeJson,
  specJson,
} from './runtimeConfig.ts';
import type { IdMap, ImageEntry, OciImageConfig, OsManifest } from './types.ts';
import { checkVolumes, substituteVolumes, volumeDirs } from './volumes.ts';

/** resolv.conf of init images points into /run, which is writable at boot. */
export const RESOLV_CONF_SYMLINK = '/run/resolvconf/resolv.conf';

export type Section = 'onboot' | 'onshutdown' | 'services';

export interface LayoutInput {
  manifest: OsManifest;
  /** The OCI config of an image, by the reference written in the manifest. */
  imageConfig: (ref: string) => OciImageConfig;
  /** Timestamp for everything assembly creates (seconds). Default: LinuxKit's 2017-04-18T16:30:00Z. */
  mtime?: number;
  /** Extra named ids, beside the container names LinuxKit numbers from 100 (these win). */
  extraIds?: IdMap;
  /** `files[].source` → the path to read (resolve `~/` and the manifest's directory here). */
  resolveSource?: (source: string) => string;
  /** For `optional` files: whether the resolved source exists. */
  sourceExists?: (path: string) => boolean;
  /** Bytes of `metadata:` files. Default: manifestMetadata of the manifest. */
  metadata?: (format: string) => Uint8Array;
}

export interface PlannedContainer {
  section: Section;
  index: number;
  name: string;
  image: string;
  /** containers/<section>/<NNN-name or name> */
  dir: string;
  config: ContainerConfig;
  /** runtime.json as written, rootfs mounts first. */
  runtime: LinuxkitRuntime;
  configJson: string;
  runtimeJson: string;
  /** Bundle path of the root filesystem this container's image was unpacked into. */
  lowerRoot: string;
  /** True when another bundle already holds this image's filesystem. */
  shared: boolean;
}

export interface LayoutPlan {
  steps: LayoutStep[];
  containers: PlannedContainer[];
  ids: Map<string, number>;
  mtime: number;
}

const encode = (s: string) => new TextEncoder().encode(s);

/** Bundle directory name: onboot and onshutdown are numbered in list order (000-name), services are not. */
export function bundleDir(section: Section, index: number, name: string): string {
  const prefix = section === 'services' ? '' : `${String(index).padStart(3, '0')}-`;
  return `containers/${section}/${prefix}${name}`;
}

/**
 * Mounts the init makes before starting a bundle. A read-only container's rootfs is a bind mount
 * of its unpacked image; a writable one is an overlay of it with a tmpfs upper layer in tmp/.
 */
export function rootfsMounts(dir: string, lowerRoot: string, readonly: boolean): OciMount[] {
  if (readonly) return [{ destination: `/${dir}/rootfs`, source: `/${lowerRoot}`, options: ['bind'] }];
  const tmp = `${dir}/tmp`;
  return [
    { destination: `/${tmp}`, type: 'tmpfs', source: 'tmpfs' },
    { destination: `/${tmp}`, options: ['remount', 'private'] },
    {
      destination: `/${dir}/rootfs`,
      type: 'overlay',
      source: 'overlay',
      options: [`lowerdir=/${lowerRoot}`, `upperdir=/${tmp}/upper`, `workdir=/${tmp}/work`],
    },
  ];
}

function checkServiceNames(services: ImageEntry[]) {
  const seen = new Set<string>();
  services.forEach((s, i) => {
    if (seen.has(s.name)) throw new AssembleError(`services[${i}]`, 'name', `duplicate service name: ${s.name}`);
    seen.add(s.name);
  });
}

export function planLayout(input: LayoutInput): LayoutPlan {
  const m = input.manifest;
  const mtime = input.mtime ?? LINUXKIT_EPOCH;
  const ids = containerIdMap(m);
  for (const [k, v] of input.extraIds ?? []) ids.set(k, v);
  checkServiceNames(m.services ?? []);
  const volumes = checkVolumes(m.volumes ?? []);
  const steps: LayoutStep[] = [];
  const at = (origin: EntryOrigin): EntryDefaults => ({ mtime, origin });

  // kernel
  const k = m.kernel;
  if (k?.image) {
    steps.push({
      kind: 'kernel',
      image: k.image,
      cmdline: k.cmdline ?? '',
      kernelPath: k.binary || 'kernel',
      tarPath: k.tar === undefined ? 'kernel.tar' : k.tar === 'none' || k.tar === '' ? undefined : k.tar,
      ucodePath: k.ucode || undefined,
      origin: { source: expandReference(k.image), location: 'kernel' },
    });
  }

  // init images, merged at /
  const init = m.init ?? [];
  init.forEach((ref, i) => {
    steps.push({
      kind: 'imageTree',
      image: ref,
      prefix: '',
      origin: { source: expandReference(ref), location: `init[${i}]` },
      resolvSymlink: RESOLV_CONF_SYMLINK,
    });
  });
  if (init.length > 1) {
    steps.push({
      kind: 'apkDatabase',
      images: [...init],
      mtime,
      origin: { source: 'LINUXKIT.apkinit', location: 'init' },
    });
  }

  // volumes: lower (the image, if any), tmp and merged
  (m.volumes ?? []).forEach((v, i) => {
    const dirs = volumeDirs(v.name);
    const location = `volume[${i}]`;
    const source = v.image ? expandReference(v.image) : 'empty';
    if (v.image && v.format === 'oci') {
      steps.push(...prefixDirs(dirs.lower, at({ source, location })));
      steps.push({
        kind: 'ociLayout',
        image: v.image,
        prefix: `${dirs.lower}/`,
        platforms: v.platforms ?? [],
        origin: { source, location },
      });
    } else {
      steps.push(...prefixDirs(dirs.lower, at({ source, location })));
      if (v.image) {
        steps.push({
          kind: 'imageTree',
          image: v.image,
          prefix: `${dirs.lower}/`,
          origin: { source, location },
          resolvSymlink: RESOLV_CONF_SYMLINK,
        });
      }
    }
    const vol = at({ source: 'linuxkit.volumes', location });
    steps.push(dirEntry(dirs.tmp, vol), dirEntry(dirs.merged, vol));
  });

  // container bundles
  const containers: PlannedContainer[] = [];
  const unpacked = new Map<string, string>(); // expanded reference → bundle path of its filesystem
  for (const section of ['onboot', 'onshutdown', 'services'] as const) {
    (m[section] ?? []).forEach((raw, index) => {
      const location = `${section}[${index}]`;
      const subject = `${location} "${raw.name}" (${raw.image})`;
      const entry = substituteVolumes(raw, volumes, subject);
      const config = containerConfig({ entry, imageConfig: input.imageConfig(raw.image), ids, subject });
      const dir = bundleDir(section, index, raw.name);
      const source = expandReference(raw.image);
      const d = at({ source, location });
      const readonly = config.readonly;
      const own = `${dir}/${readonly ? 'rootfs' : 'lower'}`;
      const earlier = unpacked.get(source);
      const lowerRoot = earlier ?? own;
      if (earlier === undefined) {
        unpacked.set(source, own);
        steps.push(...prefixDirs(own, d));
        steps.push({ kind: 'imageTree', image: raw.image, prefix: `${own}/`, origin: { source, location } });
      } else {
        steps.push(...prefixDirs(dir, d));
      }
      const configJson = specJson(config.spec);
      steps.push(fileEntry(`${dir}/config.json`, encode(configJson), d));
      if (!readonly) {
        steps.push(dirEntry(`${dir}/tmp`, d), dirEntry(`${dir}/rootfs`, d));
      } else if (earlier !== undefined) {
        steps.push(dirEntry(`${dir}/rootfs`, d));
      }
      const runtime: LinuxkitRuntime = {
        ...config.runtime,
        mounts: [...rootfsMounts(dir, lowerRoot, readonly), ...config.runtime.mounts],
      };
      const rtJson = runtimeJson(runtime);
      steps.push(fileEntry(`${dir}/runtime.json`, encode(rtJson), d));
      containers.push({
        section,
        index,
        name: raw.name,
        image: raw.image,
        dir,
        config,
        runtime,
        configJson,
        runtimeJson: rtJson,
        lowerRoot,
        shared: earlier !== undefined,
      });
    });
  }

  // files
  steps.push(
    ...planFiles(m.files ?? [], {
      ids,
      mtime,
      resolveSource: input.resolveSource,
      sourceExists: input.sourceExists,
      metadata: input.metadata ?? ((format) => manifestMetadata(m, format)),
    }),
  );

  return { steps, containers, ids, mtime };
}
