// `stele build`: a LinuxKit manifest → resolved, verified images → the initrd's tar stream →
// every requested output format. Phases report progress through `onEvent`; outputs land
// atomically (formats do their own temp + rename; the tar and the initrd go through temp names
// here), so a failed build leaves nothing half-written behind.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { formatError, type OsManifest, parseImageRef, readOsManifest } from '@stele/manifest';
import { type Platform, type RegistryOptions, type Store, tempBeside, verifyImage } from '@stele/oci';
import { loadOrGenerateSbom, mergeSbomsToBytes, storeSbom } from '@stele/pkg';
import type { OsManifest as AssemblyManifest } from '../assemble/index.ts';
import { planLayout } from '../assemble/index.ts';
import { type InitrdResult, InitrdWriter } from '../cpio.ts';
import { LINUXKIT_EPOCH, sourceDateEpoch } from '../formats/epoch.ts';
import { buildFormat, FORMATS, isFormatName } from '../formats/index.ts';
import { type HostTools, spawnHostTools } from '../hosttools.ts';
import { BuildError } from './errors.ts';
import { unpackedLayer } from './layercache.ts';
import { ociLayoutEntries } from './ocivolume.ts';
import {
  expandTemplates,
  type LockFile,
  lockDifference,
  lockOf,
  manifestRefs,
  Registries,
  type ResolvedImage,
  type ResolvedOciVolume,
  readLock,
  resolveImage,
  resolveOciVolume,
  writeLock,
} from './resolve.ts';
import { type EntrySink, TarFileSink, writeLayout } from './tar.ts';
import { type UnpackedImage, unpackImage } from './unpack.ts';

export { BuildError } from './errors.ts';
export { type LockFile, manifestRefs, type ResolvedImage } from './resolve.ts';

/** Every format name `stele build --format` takes: the disk/ISO ones plus the plain tar. */
export const BUILD_FORMATS = ['tar', ...Object.keys(FORMATS)] as const;

export type BuildEvent =
  | { type: 'phase'; phase: 'parse' | 'resolve' | 'verify' | 'unpack' | 'sbom' | 'assemble' | 'format'; detail: string }
  | { type: 'resolve'; ref: string; from: 'store' | 'registry'; digest: string }
  | { type: 'output'; format: string; files: string[] };

export interface BuildImageOptions {
  manifest: string;
  store: Store;
  formats?: string[];
  name?: string;
  dir?: string;
  arch?: string;
  pull?: boolean;
  offline?: boolean;
  /** Fail unless the lock file exists and pins exactly what the manifest resolves to. */
  frozen?: boolean;
  dryRun?: boolean;
  /** PEM public key: every image must carry a valid signature made with it. */
  verifyKey?: string;
  /** Write /sbom.spdx.json (the images' SBOMs merged); default true. */
  sbom?: boolean;
  /** Overrides build.yml's org when expanding `@pkg:` templates. */
  pkgOrg?: string;
  registry?: (host: string) => RegistryOptions;
  tools?: HostTools;
  sourceDateEpoch?: number;
  onEvent?: (e: BuildEvent) => void;
}

export interface PlanSummary {
  manifest: string;
  platform: string;
  images: { ref: string; name: string; digest: string; manifest: string }[];
  containers: { section: string; name: string; image: string; dir: string }[];
  files: string[];
}

export interface BuildImageResult {
  plan: PlanSummary;
  lockFile: string;
  outputs: { format: string; files: string[] }[];
  /** Digest of the build record (manifest, lock, outputs) written to the store. */
  digest?: string;
  recordSize?: number;
}

const ARCHES = new Set(['amd64', 'arm64', 'riscv64', 's390x', 'ppc64le']);

export function lockPathOf(manifest: string): string {
  const ext = extname(manifest);
  return `${ext ? manifest.slice(0, -ext.length) : manifest}.lock.json`;
}

async function loadManifest(path: string): Promise<OsManifest> {
  const r = await readOsManifest(path);
  if (!r.ok) throw new BuildError(r.errors.map(formatError).join('\n'));
  return r.value;
}

/** Which images `trust` (or a configured key) says must be signed. */
function mustVerify(m: OsManifest, ref: string, allByKey: boolean): boolean {
  if (allByKey) return true;
  const r = parseImageRef(ref);
  if (!r.ok) return false;
  const repo = `${r.ref.registry}/${r.ref.repository}`;
  const names = (m.trust?.image ?? []).map((i) => {
    const t = parseImageRef(i);
    return t.ok ? `${t.ref.registry}/${t.ref.repository}` : i;
  });
  const org = r.ref.repository.split('/')[0] ?? '';
  return names.includes(repo) || (m.trust?.org ?? []).includes(org);
}

/** A `files` entry's `source` on the build host: `~/…` in the home directory, else relative to the manifest. */
export function resolveSourcePath(manifestDir: string, source: string): string {
  if (source.startsWith('~/')) return join(homedir(), source.slice(2));
  return resolve(manifestDir, source);
}

const ociKey = (image: string, platforms: string[]) => `${image}\0${platforms.join(',')}`;

/** The image config's rootfs.diff_ids: the uncompressed layers' digests. */
function diffIdsOf(r: ResolvedImage): string[] | undefined {
  const ids = (r.config as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids;
  return Array.isArray(ids) && ids.every((d) => typeof d === 'string') ? ids : undefined;
}

export async function buildImage(opts: BuildImageOptions): Promise<BuildImageResult> {
  const emit = opts.onEvent ?? (() => {});
  const manifestPath = resolve(opts.manifest);
  const manifestDir = dirname(manifestPath);
  const arch = opts.arch ?? (process.arch === 'arm64' ? 'arm64' : 'amd64');
  if (!ARCHES.has(arch)) throw new BuildError(`unknown arch '${arch}' (known: ${[...ARCHES].join(', ')})`);
  const platform: Platform = { os: 'linux', architecture: arch };
  const formats = opts.formats?.length ? [...new Set(opts.formats)] : ['kernel+initrd'];
  for (const f of formats) {
    if (f !== 'tar' && !isFormatName(f)) {
      throw new BuildError(`unknown format '${f}' (known: ${BUILD_FORMATS.join(', ')})`);
    }
  }
  const name = opts.name ?? basename(manifestPath, extname(manifestPath));
  const outDir = resolve(opts.dir ?? process.cwd());
  const mtime = opts.sourceDateEpoch ?? sourceDateEpoch(undefined) ?? LINUXKIT_EPOCH;

  emit({ type: 'phase', phase: 'parse', detail: manifestPath });
  const manifest = await expandTemplates(await loadManifest(manifestPath), manifestDir, opts.pkgOrg);

  let key: KeyObject | undefined;
  if (opts.verifyKey) {
    try {
      key = createPublicKey(await readFile(opts.verifyKey, 'utf8'));
    } catch (err) {
      throw new BuildError(`--verify-key ${opts.verifyKey}: ${(err as Error).message}`);
    }
  }

  const registries = new Registries(opts.registry);
  const spoolRoot = await mkdtemp(join(tmpdir(), 'stele-build-'));
  try {
    // Volumes with `format: oci` carry their image as data (any platforms); everything else is
    // resolved for the build's platform.
    const isOci = (v: NonNullable<OsManifest['volumes']>[number]) => v.format === 'oci' && !!v.image;
    const refs = manifestRefs({ ...manifest, volumes: (manifest.volumes ?? []).filter((v) => !isOci(v)) });
    const ociVolumes = (manifest.volumes ?? []).flatMap((v, i) => (isOci(v) ? [{ v, i }] : []));
    emit({
      type: 'phase',
      phase: 'resolve',
      detail: `${refs.length + ociVolumes.length} images for ${platform.os}/${arch}`,
    });
    const resolveOpts = {
      store: opts.store,
      ...(opts.pull ? { pull: true } : {}),
      ...(opts.offline ? { offline: true } : {}),
      onEvent: emit,
    };
    const resolved: ResolvedImage[] = [];
    for (const ref of refs) resolved.push(await resolveImage(ref, { ...resolveOpts, platform }, registries));
    const volumeImages = new Map<string, ResolvedOciVolume>();
    for (const { v, i } of ociVolumes) {
      const image = v.image ?? '';
      volumeImages.set(
        ociKey(image, v.platforms ?? []),
        await resolveOciVolume(image, v.platforms ?? [], resolveOpts, registries, `volumes[${i}]`),
      );
    }
    // What the lock pins and trust checks: every image, volumes' by their top digest.
    const pinned = [
      ...resolved,
      ...[...volumeImages.values()].map((v) => ({ ref: v.ref, name: v.name, top: v.top, manifest: v.top })),
    ];
    const byRef = new Map(resolved.map((r) => [r.ref, r]));

    const lockFile = lockPathOf(manifestPath);
    const lock: LockFile = lockOf(pinned, platform);
    if (opts.frozen) {
      const existing = await readLock(lockFile);
      if (!existing) throw new BuildError(`--frozen: no lock file ${lockFile} (build once without --frozen)`);
      const why = lockDifference(existing, lock);
      if (why) throw new BuildError(`--frozen: ${lockFile} is stale: ${why}`);
    }

    // Trust: images the manifest names (or all, with a key) must carry a valid signature.
    const needTrust = pinned.filter((r) => mustVerify(manifest, r.ref, key !== undefined));
    if (needTrust.length) {
      if (!key) {
        throw new BuildError(
          `trust: ${needTrust.map((r) => r.ref).join(', ')} must be signed: give the public key with --verify-key`,
        );
      }
      emit({ type: 'phase', phase: 'verify', detail: `${needTrust.length} signatures` });
      for (const r of needTrust) {
        const ref = parseImageRef(r.ref);
        if (!ref.ok) continue;
        const repo = registries.client(ref.ref.registry).repository(ref.ref.repository);
        try {
          await verifyImage(repo, r.top, key); // throws with every reason unless all verify
        } catch (err) {
          throw new BuildError(`trust: ${r.ref}: ${(err as Error).message}`);
        }
      }
    }

    const layout = planLayout({
      manifest: manifest as unknown as AssemblyManifest,
      imageConfig: (ref) => byRef.get(ref)?.config.config ?? {},
      mtime,
      resolveSource: (s) => resolveSourcePath(manifestDir, s),
      sourceExists: (p) => existsSync(p),
    });
    const plan: PlanSummary = {
      manifest: manifestPath,
      platform: `${platform.os}/${arch}`,
      images: pinned.map((r) => ({ ref: r.ref, name: r.name, digest: r.top.digest, manifest: r.manifest.digest })),
      containers: layout.containers.map((c) => ({ section: c.section, name: c.name, image: c.image, dir: c.dir })),
      files: (manifest.files ?? []).map((f) => f.path ?? ''),
    };
    if (opts.dryRun) return { plan, lockFile, outputs: [] };

    // Missing `files` sources fail before anything is written.
    for (const [i, f] of (manifest.files ?? []).entries()) {
      if (f.source && !f.optional && !existsSync(resolveSourcePath(manifestDir, f.source))) {
        throw new BuildError(`files[${i}] (${f.path}): source ${f.source} does not exist`);
      }
    }

    // /sbom.spdx.json: the package images' SBOMs (made at `stele pkg build`, or now from their
    // layers) merged into one document for the OS image.
    const sbomEntry = async (): Promise<void> => {
      if (opts.sbom === false || !resolved.length) return;
      const docs = [];
      for (const r of resolved) {
        const ref = parseImageRef(r.ref);
        const subject = ref.ok
          ? { name: `${ref.ref.registry}/${ref.ref.repository}`, version: ref.ref.tag ?? r.top.digest }
          : { name: r.ref, version: r.top.digest };
        try {
          const sbom = await loadOrGenerateSbom([opts.store], r.manifest, subject, { created: new Date(mtime * 1000) });
          // Kept in the store like a package's own SBOM: the next build reads it instead of
          // reading every layer again.
          if (sbom.generated) await storeSbom(opts.store, r.manifest, sbom.document, subject.name);
          docs.push(sbom.document);
        } catch (err) {
          throw new BuildError(`sbom: ${r.ref}: ${(err as Error).message}`);
        }
      }
      const lockHash = createHash('sha256').update(JSON.stringify(lock)).digest('hex');
      const data = mergeSbomsToBytes(docs, {
        name,
        namespace: `https://stele.invalid/spdx/os/${name}/sha256-${lockHash}`,
        created: new Date(mtime * 1000),
      });
      const origin = { source: 'stele.sbom', location: 'sbom' };
      layout.steps.push({
        kind: 'entry',
        entry: {
          path: 'sbom.spdx.json',
          type: 'file',
          mode: 0o644, // as LinuxKit's SbomGenerator
          uid: 0,
          gid: 0,
          mtime,
          source: { kind: 'bytes', data },
          origin,
        },
      });
    };

    emit({
      type: 'phase',
      phase: 'unpack',
      detail: `${resolved.length} images${opts.sbom === false ? '' : ', SBOMs'}`,
    });
    // Every layer is gunzipped once into the store's layer cache (two at a time: gunzip runs on
    // libuv's threads); later builds read the files from there.
    const layerJobs = new Map<string, { layer: (typeof resolved)[number]['layers'][number]; diffId?: string }>();
    for (const r of resolved) {
      for (const [i, layer] of r.layers.entries()) {
        const diffId = diffIdsOf(r)?.[i];
        if (!layerJobs.has(layer.digest)) layerJobs.set(layer.digest, { layer, ...(diffId ? { diffId } : {}) });
      }
    }
    const unpackAll = async () => {
      const queue = [...layerJobs.values()];
      const worker = async () => {
        for (let job = queue.shift(); job; job = queue.shift()) {
          try {
            await unpackedLayer(opts.store, job.layer, job.diffId);
          } catch (err) {
            const owner = resolved.find((r) => r.layers.some((l) => l.digest === job?.layer.digest));
            throw new BuildError(`${owner?.ref ?? 'image'}: ${(err as Error).message}`);
          }
        }
      };
      await Promise.all([worker(), worker()]);
    };
    await Promise.all([unpackAll(), sbomEntry()]);
    const unpacked = new Map<string, UnpackedImage>();
    for (const r of resolved) {
      unpacked.set(r.ref, await unpackImage(opts.store, r.layers, diffIdsOf(r), r.ref));
    }
    const image = (ref: string) => {
      const u = unpacked.get(ref);
      if (!u) throw new BuildError(`image ${ref} was not resolved`);
      return u;
    };

    emit({ type: 'phase', phase: 'assemble', detail: `${layout.steps.length} steps` });
    await mkdir(outDir, { recursive: true });
    const wantTar = formats.includes('tar');
    const diskFormats = formats.filter((f) => f !== 'tar');
    const tarOut = join(outDir, `${name}.tar`);
    const tarTmp = tempBeside(tarOut);
    const initrdTmp = join(spoolRoot, 'initrd.img');
    let initrd: InitrdResult | undefined;
    const outputs: BuildImageResult['outputs'] = [];
    const tarFile = wantTar ? await open(tarTmp, 'wx') : undefined;
    const tarSink = tarFile ? new TarFileSink(tarFile) : undefined;
    const initrdWriter = diskFormats.length
      ? await InitrdWriter.open(initrdTmp, { sourceDateEpoch: mtime })
      : undefined;
    const sinks: EntrySink[] = [];
    if (tarSink) sinks.push(tarSink);
    if (initrdWriter) {
      sinks.push({
        begin: (e) => initrdWriter.begin(e),
        data: (c) => initrdWriter.data(c),
        end: () => initrdWriter.end(),
      });
    }
    try {
      await writeLayout(sinks, {
        steps: layout.steps,
        mtime,
        image,
        ociLayout: (step) => {
          const vol = volumeImages.get(ociKey(step.image, step.platforms));
          if (!vol) throw new BuildError(`${step.origin.location}: image ${step.image} was not resolved`);
          return ociLayoutEntries(opts.store, vol, step, mtime);
        },
      });
      if (tarSink && tarFile) {
        await tarSink.finish();
        await tarFile.close();
        await rename(tarTmp, tarOut);
        outputs.push({ format: 'tar', files: [tarOut] });
        emit({ type: 'output', format: 'tar', files: [tarOut] });
      }
      if (initrdWriter) initrd = await initrdWriter.finish();
    } catch (err) {
      await tarFile?.close().catch(() => undefined);
      await rm(tarTmp, { force: true });
      await rm(tarOut, { force: true });
      await initrdWriter?.abort();
      throw err;
    }
    if (diskFormats.length) {
      const boot = initrd;
      if (!boot?.kernel) throw new BuildError('the manifest has no kernel: only the tar format can be built');
      const tools = opts.tools ?? spawnHostTools();
      for (const format of diskFormats) {
        emit({ type: 'phase', phase: 'format', detail: format });
        try {
          const r = await buildFormat(format, {
            name,
            dir: outDir,
            kernel: boot.kernel,
            initrd: initrdTmp,
            cmdline: boot.cmdline ?? '',
            ...(boot.ucode ? { ucode: boot.ucode } : {}),
            tools,
            sourceDateEpoch: mtime,
          });
          outputs.push({ format, files: r.files });
          emit({ type: 'output', format, files: r.files });
        } catch (err) {
          // Formats already placed by this build go too: no half set of outputs.
          for (const o of outputs) for (const f of o.files) await rm(f, { force: true });
          throw new BuildError(`format ${format}: ${(err as Error).message}`);
        }
      }
    }
    if (!opts.frozen) await writeLock(lockFile, lock);
    // The build record goes into the store: a descriptor naming it (Nx's cache) is only as good
    // as the store still holding it.
    const record = Buffer.from(
      JSON.stringify({
        manifest: manifestPath,
        lock,
        outputs: outputs.map((o) => ({ format: o.format, files: o.files })),
      }),
    );
    const { digest } = await opts.store.writeBlob(record);
    return { plan, lockFile, outputs, digest, recordSize: record.length };
  } finally {
    await registries.close();
    await rm(spoolRoot, { recursive: true, force: true });
  }
}
