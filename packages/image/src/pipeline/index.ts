// `stele build`: a LinuxKit manifest → resolved, verified images → the initrd's tar stream →
// every requested output format. Each stage is a function of its own file, taking what the
// earlier ones made: settings → parse → resolve → lock → verify → plan → unpack (+ SBOM) →
// assemble → formats → record. Stages report progress through `onEvent`; outputs land
// atomically (formats do their own temp + rename; the tar and the initrd go through temp names),
// so a failed build leaves nothing half-written behind.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RegistryOptions, Store } from '@stele/oci';
import type { HostTools } from '../hosttools.ts';
import { assemble } from './assemble.ts';
import { writeDiskFormats } from './disks.ts';
import { loadInputs } from './load.ts';
import { lockImages, resolveImages, verifyTrust } from './pin.ts';
import { checkSources, type PlanSummary, planBuild } from './plan.ts';
import { type LockFile, Registries, writeLock } from './resolve.ts';
import { sbomStep } from './sbom.ts';
import { buildSettings } from './settings.ts';
import { fillLayerCache, unpackImages } from './unpack.ts';

export { BuildError } from './errors.ts';
export { lockPathOf } from './pin.ts';
export { type PlanSummary, resolveSourcePath } from './plan.ts';
export { type LockFile, manifestRefs, type ResolvedImage } from './resolve.ts';
export { BUILD_FORMATS } from './settings.ts';

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

export interface BuildImageResult {
  plan: PlanSummary;
  lockFile: string;
  outputs: { format: string; files: string[] }[];
  /** Digest of the build record (manifest, lock, outputs) written to the store. */
  digest?: string;
  recordSize?: number;
}

/**
 * The record stage: the build record goes into the store — a descriptor naming it (Nx's cache)
 * is only as good as the store still holding it.
 */
async function recordBuild(
  store: Store,
  record: { manifest: string; lock: LockFile; outputs: BuildImageResult['outputs'] },
): Promise<{ digest: string; recordSize: number }> {
  const bytes = Buffer.from(
    JSON.stringify({
      manifest: record.manifest,
      lock: record.lock,
      outputs: record.outputs.map((o) => ({ format: o.format, files: o.files })),
    }),
  );
  const { digest } = await store.writeBlob(bytes);
  return { digest, recordSize: bytes.length };
}

export async function buildImage(opts: BuildImageOptions): Promise<BuildImageResult> {
  const emit = opts.onEvent ?? (() => {});
  const s = buildSettings(opts);
  const { manifest, key } = await loadInputs(s, opts, emit);
  const registries = new Registries(opts.registry);
  const spoolRoot = await mkdtemp(join(tmpdir(), 'stele-build-'));
  try {
    const resolved = await resolveImages(manifest, s, opts, registries, emit);
    const { lockFile, lock } = await lockImages(s, resolved.pinned, opts.frozen);
    await verifyTrust(manifest, resolved.pinned, key, registries, emit);
    const { layout, plan } = planBuild(manifest, s, resolved);
    if (opts.dryRun) return { plan, lockFile, outputs: [] };
    checkSources(manifest, s);

    const { images } = resolved;
    emit({ type: 'phase', phase: 'unpack', detail: `${images.length} images${opts.sbom === false ? '' : ', SBOMs'}` });
    const [, sbom] = await Promise.all([
      fillLayerCache(opts.store, images),
      opts.sbom === false ? undefined : sbomStep(opts.store, images, { name: s.name, mtime: s.mtime, lock }),
    ]);
    if (sbom) layout.steps.push(sbom);
    const image = await unpackImages(opts.store, images);

    const diskFormats = s.formats.filter((f) => f !== 'tar');
    const initrdPath = join(spoolRoot, 'initrd.img');
    const assembled = await assemble(
      {
        store: opts.store,
        steps: layout.steps,
        mtime: s.mtime,
        image,
        volumes: resolved.volumes,
        outDir: s.outDir,
        name: s.name,
        tar: s.formats.includes('tar'),
        ...(diskFormats.length ? { initrd: initrdPath } : {}),
      },
      emit,
    );
    const outputs = await writeDiskFormats(
      {
        formats: diskFormats,
        initrdPath,
        boot: assembled.initrd,
        name: s.name,
        outDir: s.outDir,
        mtime: s.mtime,
        ...(opts.tools ? { tools: opts.tools } : {}),
        placed: assembled.outputs,
      },
      emit,
    );
    if (!opts.frozen) await writeLock(lockFile, lock);
    const record = await recordBuild(opts.store, { manifest: s.manifestPath, lock, outputs });
    return { plan, lockFile, outputs, ...record };
  } finally {
    await registries.close();
    await rm(spoolRoot, { recursive: true, force: true });
  }
}
