import { resolve } from 'node:path';
import { BUILD_FORMATS, BuildError, type BuildEvent, buildImage } from '@stele/image';
import { formatError, readOsManifest } from '@stele/manifest';
import { DEFAULT_STORE_DIR_HELP, defaultStoreDir, Store, writeBuildDescriptor } from '@stele/oci';
import type { Command } from '../cli.ts';
import { UserError } from '../cli.ts';

function progress(io: { stderr: NodeJS.WritableStream & { isTTY?: boolean } }, json: boolean) {
  const t0 = Date.now();
  return (e: BuildEvent) => {
    if (json) {
      io.stderr.write(`${JSON.stringify({ ...e, ms: Date.now() - t0 })}\n`);
      return;
    }
    if (!io.stderr.isTTY) return;
    const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(5);
    if (e.type === 'phase') io.stderr.write(`${s}s  ${e.phase.padEnd(8)} ${e.detail}\n`);
    else if (e.type === 'resolve') io.stderr.write(`${s}s    ${e.ref} → ${e.digest.slice(0, 19)} (${e.from})\n`);
    else io.stderr.write(`${s}s    ${e.format}: ${e.files.join(', ')}\n`);
  };
}

export const build: Command = {
  name: 'build',
  summary: 'build an OS image from a LinuxKit manifest: kernel+initrd, ISO, disk images, tar — no Docker',
  usage:
    '[--format F]... [--name N] [--dir D] [--cache DIR] [--arch A] [--pull] [--frozen] [--dry-run] [--json] MANIFEST',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele build fleets/swarm-worker/os.yml',
    'stele build --format iso-efi --format qcow2-bios --dir out fleets/swarm-worker/os.yml',
    'stele build --dry-run --json fleets/swarm-worker/os.yml | jq .images',
    'stele build --frozen --verify-key cosign.pub fleets/swarm-worker/os.yml',
  ],
  options: {
    format: {
      type: 'string',
      short: 'f',
      multiple: true,
      placeholder: 'F',
      description: `output format (default kernel+initrd): ${BUILD_FORMATS.join(', ')}`,
    },
    name: { type: 'string', placeholder: 'N', description: 'base name of the outputs (default: manifest file name)' },
    dir: { type: 'string', placeholder: 'D', description: 'output directory (default: current directory)' },
    cache: {
      type: 'string',
      placeholder: 'DIR',
      description: `local OCI store (default ${DEFAULT_STORE_DIR_HELP}); layers are unpacked into its unpacked/ once`,
    },
    arch: {
      type: 'string',
      placeholder: 'A',
      description: 'target architecture: amd64 or arm64 (default: this machine)',
    },
    pull: { type: 'boolean', description: 'ask the registry for every image, even those in the store' },
    offline: { type: 'boolean', description: 'never contact a registry: every image must be in the store' },
    frozen: { type: 'boolean', description: 'fail unless the lock file beside the manifest pins exactly these images' },
    'dry-run': {
      type: 'boolean',
      description: 'resolve and print the plan (images, containers, files); write nothing',
    },
    'verify-key': {
      type: 'string',
      placeholder: 'PUB',
      description: 'cosign public key: every image must carry a valid signature by it',
    },
    'pkg-org': { type: 'string', placeholder: 'ORG', description: "org for @pkg: templates instead of build.yml's" },
    'no-sbom': { type: 'boolean', description: "do not write /sbom.spdx.json (the images' SBOMs merged)" },
    descriptor: { type: 'string', placeholder: 'FILE', description: 'write the build descriptor as JSON (for Nx)' },
    json: { type: 'boolean', description: 'print the result as JSON; progress as JSON lines on stderr' },
  },
  async run({ io, values, positionals }) {
    const json = Boolean(values.json);
    const manifest = resolve(io.cwd, positionals[0] as string);
    // The manifest is checked before anything is created (the store on a first run).
    const parsed = await readOsManifest(manifest, positionals[0] as string);
    if (!parsed.ok) throw new UserError(parsed.errors.map(formatError).join('\n'));
    const store = await Store.open(resolve(io.cwd, (values.cache as string | undefined) ?? defaultStoreDir(io.env)));
    let result: Awaited<ReturnType<typeof buildImage>>;
    try {
      result = await buildImage({
        manifest,
        store,
        // Repeatable, and each may list several: --format iso-efi,qcow2-bios (as Nx passes them).
        formats: ((values.format as string[] | undefined) ?? []).flatMap((f) => f.split(',').filter(Boolean)),
        ...(values.name ? { name: values.name as string } : {}),
        dir: resolve(io.cwd, (values.dir as string | undefined) ?? '.'),
        ...(values.arch ? { arch: values.arch as string } : {}),
        pull: Boolean(values.pull),
        offline: Boolean(values.offline),
        frozen: Boolean(values.frozen),
        dryRun: Boolean(values['dry-run']),
        ...(values['verify-key'] ? { verifyKey: resolve(io.cwd, values['verify-key'] as string) } : {}),
        ...(values['pkg-org'] ? { pkgOrg: values['pkg-org'] as string } : {}),
        sbom: !values['no-sbom'],
        onEvent: progress(io, json),
      });
    } catch (err) {
      if (err instanceof BuildError) throw new UserError(err.message);
      throw err;
    }
    if (values.descriptor && result.digest) {
      await writeBuildDescriptor(resolve(io.cwd, values.descriptor as string), {
        digest: result.digest,
        mediaType: 'application/vnd.stele.build-record.v1+json',
        size: result.recordSize ?? 0,
        refs: result.outputs.flatMap((o) => o.files),
      });
    }
    if (json) {
      io.stdout.write(`${JSON.stringify(values['dry-run'] ? result.plan : result, null, 2)}\n`);
    } else if (values['dry-run']) {
      const p = result.plan;
      io.stdout.write(`${p.manifest} for ${p.platform}\nimages:\n`);
      for (const i of p.images) io.stdout.write(`  ${i.ref}  ${i.digest}\n`);
      io.stdout.write('containers:\n');
      for (const c of p.containers) io.stdout.write(`  ${c.section.padEnd(10)} ${c.name.padEnd(16)} ${c.image}\n`);
      if (p.files.length) io.stdout.write(`files:\n${p.files.map((f) => `  ${f}\n`).join('')}`);
    } else {
      for (const o of result.outputs) io.stdout.write(`${o.format}: ${o.files.join(' ')}\n`);
    }
    return 0;
  },
};
