import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  type BuildDescriptor,
  DEFAULT_STORE_DIR_HELP,
  type Descriptor,
  hostPlatform,
  parseManifest,
  parsePlatform,
  parseReference,
  RegistryClient,
  type Source,
  selectPlatform,
  writeBuildDescriptor,
} from '@stele/oci';
import {
  type BuildOptions,
  buildPackages,
  cosignSigner,
  DockerEndpointError,
  defaultStoreDir,
  dockerEngine,
  EngineUnavailableError,
  type FoundSbom,
  findSbom,
  GitError,
  gitCli,
  loadPackage,
  loadPrivateKey,
  normaliseArches,
  PackageError,
  type PackageResult,
  PkgError,
  pushIndexFromRegistry,
  qualify,
  registryRemote,
  SbomError,
  Store,
  TagError,
} from '@stele/pkg';
import { type Command, type Context, type OptionSpec, UsageError, UserError } from '../cli.ts';

const KNOWN_ERRORS = [
  PkgError,
  PackageError,
  EngineUnavailableError,
  DockerEndpointError,
  TagError,
  GitError,
  SbomError,
];

/** Library errors the user can act on become UserError (exit 1, no stack). */
async function userErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (KNOWN_ERRORS.some((E) => err instanceof E)) throw new UserError((err as Error).message);
    const e = err as { name?: string; message?: string };
    if (e?.name === 'RegistryError') throw new UserError(`registry: ${e.message}`);
    throw err;
  }
}

const orgOption: OptionSpec = {
  type: 'string',
  placeholder: 'ORG',
  description: "override build.yml 'org', e.g. a registry namespace 127.0.0.1:5000/stele",
};

const buildOptions: Record<string, OptionSpec> = {
  org: orgOption,
  platforms: {
    type: 'string',
    placeholder: 'LIST',
    description: "arches to build, e.g. linux/amd64,linux/arm64 (default: build.yml 'arches')",
  },
  builder: {
    type: 'string',
    multiple: true,
    placeholder: 'PLATFORM=HOST',
    description: 'engine for a foreign arch, e.g. linux/arm64=unix:///run/arm64-docker.sock',
  },
  force: { type: 'boolean', description: 'build even when the tag is in the store or the registry' },
  'no-registry': { type: 'boolean', description: 'do not ask the registry whether a tag exists (offline)' },
  'no-sbom': { type: 'boolean', description: 'do not generate, store or push SPDX SBOMs of the built images' },
  store: {
    type: 'string',
    placeholder: 'DIR',
    description: `local OCI store (default ${DEFAULT_STORE_DIR_HELP})`,
  },
  json: { type: 'boolean', description: 'print the results as JSON on stdout' },
  descriptor: {
    type: 'string',
    placeholder: 'FILE',
    description: "write the first package's index descriptor (digest, mediaType, size, refs) as JSON, for Nx",
  },
  'sign-key': {
    type: 'string',
    placeholder: 'FILE',
    description: 'cosign private key to sign pushed images ($STELE_SIGN_KEY; passphrase in $COSIGN_PASSWORD)',
  },
};

/** The signer for --sign-key / $STELE_SIGN_KEY, or undefined when no key is configured. */
async function signerFor(ctx: Context) {
  const file = (ctx.values['sign-key'] as string | undefined) ?? ctx.io.env.STELE_SIGN_KEY;
  if (!file) return undefined;
  const pass = ctx.io.env.STELE_KEY_PASSWORD ?? ctx.io.env.COSIGN_PASSWORD;
  if (pass === undefined)
    throw new UserError(`signing key ${file}: set COSIGN_PASSWORD (or STELE_KEY_PASSWORD) to its passphrase`);
  let pem: string;
  try {
    pem = await readFile(resolve(ctx.io.cwd, file), 'utf8');
  } catch (err) {
    throw new UserError(`signing key ${file}: ${(err as Error).message}`);
  }
  try {
    return cosignSigner(await loadPrivateKey(pem, pass), { env: ctx.io.env });
  } catch (err) {
    throw new UserError(`signing key ${file}: ${(err as Error).message}`);
  }
}

function parseBuilders(specs: string[]): Record<string, () => ReturnType<typeof dockerEngine>> {
  const out: Record<string, () => ReturnType<typeof dockerEngine>> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0)
      throw new UsageError(`--builder '${spec}': want PLATFORM=HOST, e.g. linux/arm64=unix:///path/docker.sock`);
    let arch: string;
    try {
      [arch] = normaliseArches([spec.slice(0, eq)]) as [string];
    } catch (err) {
      throw new UsageError(`--builder '${spec}': ${(err as Error).message}`);
    }
    const host = spec.slice(eq + 1);
    out[arch] = () => dockerEngine(host);
  }
  return out;
}

function summary(results: PackageResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    const arches = r.arches.map((a) => `${a.arch} ${a.status}${a.status === 'skipped' ? ` (${a.reason})` : ''}`);
    lines.push(
      `${r.ref}  ${arches.join(', ')}${r.pushed.length ? '  pushed' : ''}${r.signed.length ? ', signed' : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function runBuild(ctx: Context, push: boolean): Promise<number> {
  const { io, values, positionals } = ctx;
  const dirs = positionals.map((p) => resolve(io.cwd, p));
  const showBuildLog = Boolean(io.stderr.isTTY) && !values.json;
  const remote = values['no-registry'] ? undefined : registryRemote({ env: io.env });
  const builderSpecs = (values.builder as string[] | undefined) ?? [];
  const opts: BuildOptions = {
    git: gitCli(),
    store: await Store.open((values.store as string | undefined) ?? defaultStoreDir(io.env)),
    engine: () => dockerEngine(io.env.DOCKER_HOST || undefined),
    builders: parseBuilders(builderSpecs),
    ...(remote ? { remote } : {}),
    ...(values.platforms ? { arches: [values.platforms as string] } : {}),
    force: Boolean(values.force),
    sbom: !values['no-sbom'],
    push: push || Boolean(values.push),
    ...(values.org ? { org: values.org as string } : {}),
    log: (l) => io.stderr.write(`${l}\n`),
    ...(showBuildLog ? { buildLog: (l: string) => io.stderr.write(`  | ${l}\n`) } : {}),
  };
  if (opts.push && !remote) throw new UsageError('--push needs the registry: drop --no-registry');
  const signer = opts.push ? await signerFor(ctx) : undefined;
  if (signer) opts.sign = signer;
  try {
    const results = await userErrors(() => buildPackages(dirs, opts));
    if (values.descriptor) {
      await writeBuildDescriptor(
        resolve(io.cwd, values.descriptor as string),
        await describe(results, dirs[0], opts, remote),
      );
    }
    io.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : summary(results));
    return 0;
  } finally {
    await remote?.close();
    await signer?.close();
  }
}

/** The descriptor of the package built from `dir`: its index, from the store or else the registry. */
async function describe(
  results: PackageResult[],
  dir: string | undefined,
  opts: BuildOptions,
  remote: ReturnType<typeof registryRemote> | undefined,
): Promise<BuildDescriptor> {
  const r = results.find((x) => x.dir === dir) ?? results[0];
  if (!r) throw new UserError('--descriptor: nothing was built');
  const local = await opts.store.resolve(r.fullRef).catch(() => undefined);
  const desc = local ?? (await remote?.resolve(r.fullRef));
  if (!desc) throw new UserError(`--descriptor: ${r.ref} is neither in the store nor in the registry`);
  return { digest: desc.digest, mediaType: desc.mediaType, size: desc.size, refs: [r.fullRef, ...r.pushed] };
}

const build: Command = {
  name: 'build',
  summary: 'build packages (and the repo packages they build FROM) into the local store',
  usage: '[flags] DIR...',
  positionals: { min: 1, max: Number.POSITIVE_INFINITY },
  examples: [
    'stele pkg build pkg/sshd',
    'stele pkg build --platforms linux/amd64 pkg/*',
    'stele pkg build --builder linux/arm64=unix:///run/arm64.sock pkg/init',
    'stele pkg build --org 127.0.0.1:5000/stele --push pkg/sshd',
    'stele pkg build --json pkg/sshd | jq ".[].arches"',
  ],
  options: { ...buildOptions, push: { type: 'boolean', description: 'push per-arch tags and the index, then sign' } },
  run: (ctx) => runBuild(ctx, false),
};

const push: Command = {
  name: 'push',
  summary: 'build if needed, then push <tag>-<arch> and the <tag> index, and sign when a key is set',
  usage: '[flags] DIR...',
  positionals: { min: 1, max: Number.POSITIVE_INFINITY },
  examples: ['stele pkg push pkg/sshd', 'stele pkg push --org registry.example.com/stele pkg/*'],
  options: buildOptions,
  run: (ctx) => runBuild(ctx, true),
};

const showTag: Command = {
  name: 'show-tag',
  summary: "print a package's image and tag (org/image:tag) from its source tree",
  usage: '[--canonical] [--org ORG] DIR...',
  positionals: { min: 1, max: Number.POSITIVE_INFINITY },
  examples: ['stele pkg show-tag pkg/sshd', 'stele pkg show-tag --canonical pkg/init pkg/runc'],
  options: {
    canonical: { type: 'boolean', description: 'print the full name, e.g. docker.io/linuxkit/sshd:<tag>' },
    org: orgOption,
  },
  async run({ io, values, positionals }) {
    const git = gitCli();
    for (const p of positionals) {
      const pkg = await userErrors(() =>
        loadPackage(resolve(io.cwd, p), { git, ...(values.org ? { org: values.org as string } : {}) }),
      );
      io.stdout.write(`${values.canonical ? pkg.fullRef : pkg.ref}\n`);
    }
    return 0;
  },
};

const manifest: Command = {
  name: 'manifest',
  summary: 'rebuild and push the <tag> index from the per-arch tags in the registry',
  usage: '[--org ORG] [--json] DIR',
  positionals: { min: 1, max: 1 },
  examples: ['stele pkg manifest pkg/sshd', 'stele pkg manifest --org 127.0.0.1:5000/stele --json pkg/sshd'],
  options: { org: orgOption, json: { type: 'boolean', description: 'print the index digest and arches as JSON' } },
  async run({ io, values, positionals }) {
    const pkg = await userErrors(() =>
      loadPackage(resolve(io.cwd, positionals[0] as string), {
        git: gitCli(),
        ...(values.org ? { org: values.org as string } : {}),
      }),
    );
    const remote = registryRemote({ env: io.env });
    try {
      const index = await userErrors(() => pushIndexFromRegistry(pkg, remote, (l) => io.stderr.write(`${l}\n`)));
      if (!index) {
        throw new UserError(
          `${pkg.ref}: the registry has none of ${pkg.arches.map((a) => `${pkg.tag}-${a}`).join(', ')}: push them first (stele pkg push)`,
        );
      }
      const out = { ref: qualify(pkg.fullRef), digest: index.descriptor.digest, arches: index.arches };
      io.stdout.write(
        values.json ? `${JSON.stringify(out, null, 2)}\n` : `${out.ref}@${out.digest} (${out.arches.join(', ')})\n`,
      );
      return 0;
    } finally {
      await remote.close();
    }
  },
};

/** The single-platform image `ref` names in `src` (an index: the manifest for `platform`). */
async function imageIn(src: Source, ref: string, platform: string | undefined): Promise<Descriptor> {
  const desc = await src.resolve(ref);
  const m = parseManifest(await src.fetchManifest(desc), desc.mediaType);
  if (m.kind === 'manifest') return desc;
  return selectPlatform(m.index, platform ? parsePlatform(platform) : hostPlatform());
}

const sbom: Command = {
  name: 'sbom',
  summary: "print the SPDX SBOM of a package image (made at build time), from the store or else the image's registry",
  usage: '[--platform linux/ARCH] [--list] [--store DIR] [--no-registry] REF',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele pkg sbom 127.0.0.1:5000/stele/sshd:<tag>',
    'stele pkg sbom --platform linux/arm64 --list linuxkit/init:<tag>',
  ],
  options: {
    platform: {
      type: 'string',
      placeholder: 'PLATFORM',
      description: 'which image of a multi-arch index (default: this machine, e.g. linux/amd64)',
    },
    list: { type: 'boolean', description: 'print one line per package (name, version, purl) instead of the JSON' },
    store: buildOptions.store as OptionSpec,
    'no-registry': { type: 'boolean', description: 'look in the local store only' },
  },
  async run({ io, values, positionals }) {
    const input = positionals[0] as string;
    let ref: string;
    try {
      ref = /^sha256:/.test(input) ? input : qualify(input);
    } catch (err) {
      throw new UsageError(`'${input}': ${(err as Error).message}`);
    }
    const platform = values.platform as string | undefined;
    const store = await Store.open((values.store as string | undefined) ?? defaultStoreDir(io.env));
    let found: FoundSbom | undefined;
    let digest: string | undefined;
    const where: string[] = [];
    try {
      const image = await imageIn(store, ref, platform);
      digest = image.digest;
      found = await userErrors(() => findSbom(store, image.digest));
      where.push(`the store (image ${image.digest})`);
    } catch (err) {
      if (err instanceof UserError) throw err;
      where.push(`the store (${(err as Error).message})`);
    }
    if (!found && !values['no-registry'] && !ref.startsWith('sha256:')) {
      const r = parseReference(ref);
      const client = new RegistryClient(r.registry, { env: io.env });
      try {
        const repo = client.repository(r.repository);
        const image = await userErrors(() => imageIn(repo, r.digest ?? r.tag ?? 'latest', platform));
        digest = image.digest;
        found = await userErrors(() => findSbom(repo, image.digest));
        where.push(`${r.registry}/${r.repository} (image ${image.digest})`);
      } finally {
        await client.close();
      }
    }
    if (!found) {
      throw new UserError(
        `no SBOM for ${input}${digest ? ` (${digest})` : ''} in ${where.join(' or ')}: SBOMs are made by 'stele pkg build' (without --no-sbom)`,
      );
    }
    if (values.list) {
      for (const p of found.document.packages) {
        const purl = p.externalRefs?.find((x) => x.referenceType === 'purl')?.referenceLocator ?? '';
        io.stdout.write(`${p.name}\t${p.versionInfo ?? ''}\t${purl}\n`);
      }
    } else {
      io.stdout.write(found.bytes);
    }
    return 0;
  },
};

export const pkg: Command = {
  name: 'pkg',
  summary: 'build, push and tag LinuxKit-style packages (pkg/<name>/build.yml + Dockerfile)',
  examples: [
    'stele pkg build pkg/sshd',
    'stele pkg push pkg/sshd',
    'stele pkg show-tag pkg/sshd',
    'stele pkg manifest pkg/sshd',
    'stele pkg sbom 127.0.0.1:5000/stele/sshd:<tag>',
  ],
  subcommands: [build, push, showTag, manifest, sbom],
};
