// `stele cache|pull|push|key|sign|verify`: thin commands over @stele/oci.
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pruneUnpacked } from '@stele/image';
import { formatImageRef, type ImageRef } from '@stele/manifest';
import {
  ArchiveError,
  type CopyEvent,
  CredentialsError,
  copy,
  DEFAULT_STORE_DIR_HELP,
  DigestError,
  defaultStoreDir,
  exportArchive,
  generateKeyPair,
  importArchive,
  JsonSyntaxError,
  KeyError,
  LockError,
  loadPrivateKey,
  loadPublicKey,
  MissingBlobError,
  type Platform,
  parsePlatform,
  parseReference,
  pushMultiArch,
  RegistryClient,
  RegistryError,
  type RegistryOptions,
  referenceTarget,
  SignatureError,
  Store,
  StoreError,
  signImage,
  verifyImage,
} from '@stele/oci';
import { type Command, type Context, type Io, type OptionSpec, UsageError, UserError } from '../cli.ts';

const CACHE: Record<string, OptionSpec> = {
  cache: {
    type: 'string',
    placeholder: 'DIR',
    description: `OCI layout store (default ${DEFAULT_STORE_DIR_HELP})`,
  },
};
const JSON_OPT: Record<string, OptionSpec> = { json: { type: 'boolean', description: 'print JSON (events, results)' } };
const REGISTRY: Record<string, OptionSpec> = {
  'ca-file': { type: 'string', placeholder: 'PEM', description: 'CA certificate(s) to trust for this registry' },
  'plain-http': { type: 'boolean', description: 'talk plain HTTP (loopback registries fall back to it by themselves)' },
  insecure: { type: 'boolean', description: 'allow falling back to plain HTTP for a non-loopback registry' },
  'skip-tls-verify': {
    type: 'boolean',
    description: "do not verify the registry's certificate (this connection only)",
  },
};

/**
 * Failures of @stele/oci that are the user's or the machine's (a registry refused, a blob is
 * damaged, the disk is full, a lock is held, an archive is cut short), never a bug in Stele:
 * printed as they are, without "internal error".
 */
const KNOWN = [
  RegistryError,
  DigestError,
  KeyError,
  SignatureError,
  StoreError,
  LockError,
  ArchiveError,
  MissingBlobError,
  CredentialsError,
  JsonSyntaxError,
];

export function isOciUserError(err: unknown): err is Error {
  return KNOWN.some((E) => err instanceof E);
}

async function userErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UserError || err instanceof UsageError) throw err;
    if (isOciUserError(err)) throw new UserError(err.message);
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EACCES') throw new UserError(e.message);
    if (
      e instanceof Error &&
      /not in the store|not found|malformed|invalid|unsupported|no manifest for|no image for/.test(e.message)
    ) {
      throw new UserError(e.message);
    }
    throw err;
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

async function openStore(ctx: Context): Promise<Store> {
  const dir = str(ctx.values.cache) ?? defaultStoreDir(ctx.io.env);
  return Store.open(resolve(ctx.io.cwd, dir));
}

function registryOptions(ctx: Context): RegistryOptions {
  const v = ctx.values;
  return {
    ...(str(v['ca-file']) ? { caFile: resolve(ctx.io.cwd, str(v['ca-file']) as string) } : {}),
    plainHttp: v['plain-http'] === true,
    insecure: v.insecure === true,
    skipTlsVerify: v['skip-tls-verify'] === true,
    env: ctx.io.env,
  };
}

function ref(s: string): ImageRef {
  try {
    return parseReference(s);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function platforms(v: unknown): Platform[] | undefined {
  const list = Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : [];
  if (!list.length) return undefined;
  try {
    return list.flatMap((s) => s.split(',')).map(parsePlatform);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function human(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let i = 0;
  let x = n;
  while (x >= 1000 && i < units.length - 1) {
    x /= 1000;
    i++;
  }
  return `${x.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/**
 * Progress: on a TTY one line per blob in flight, rewritten in place with bytes and rate; on a
 * pipe nothing; with --json one event per line (progress at most every 250 ms per blob).
 */
export function progress(io: Io, json: boolean, verb: string): { onEvent: (e: CopyEvent) => void; done: () => void } {
  if (json) {
    const last = new Map<string, number>();
    return {
      onEvent(e) {
        if (e.type === 'blob-progress') {
          const now = Date.now();
          if (now - (last.get(e.digest) ?? 0) < 250 && e.bytes < e.size) return;
          last.set(e.digest, now);
        }
        io.stderr.write(`${JSON.stringify({ event: e.type, ...e, type: undefined })}\n`);
      },
      done() {},
    };
  }
  if (!io.stderr.isTTY) return { onEvent() {}, done() {} };
  const active = new Map<string, { size: number; bytes: number; t0: number }>();
  let drawn = 0;
  let lastDraw = 0;
  const draw = (force = false) => {
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    let s = drawn ? `\x1b[${drawn}A` : '';
    const lines = [...active.entries()].map(([d, a]) => {
      const secs = Math.max((now - a.t0) / 1000, 0.001);
      const pct = a.size ? Math.floor((100 * a.bytes) / a.size) : 100;
      return `${verb} ${d.slice(7, 19)}  ${human(a.bytes)} / ${human(a.size)}  ${String(pct).padStart(3)}%  ${human(a.bytes / secs)}/s`;
    });
    for (const l of lines) s += `\x1b[2K${l}\n`;
    for (let i = lines.length; i < drawn; i++) s += '\x1b[2K\n';
    if (drawn > lines.length) s += `\x1b[${drawn - lines.length}A`;
    drawn = lines.length;
    io.stderr.write(s);
  };
  return {
    onEvent(e) {
      if (e.type === 'blob-start') active.set(e.digest, { size: e.size, bytes: 0, t0: Date.now() });
      else if (e.type === 'blob-progress') {
        const a = active.get(e.digest);
        if (a) a.bytes = e.bytes;
        draw();
      } else if (e.type === 'blob-done') {
        active.delete(e.digest);
        draw(true);
        io.stderr.write(
          `${verb === 'push' ? 'pushed' : 'pulled'} ${e.digest.slice(0, 19)}  ${human(e.size)} in ${(e.ms / 1000).toFixed(1)}s\n`,
        );
        drawn = 0;
      } else if (e.type === 'blob-skip') {
        io.stderr.write(
          `${e.reason === 'mounted' ? 'mounted' : 'exists '} ${e.digest.slice(0, 19)}  ${human(e.size)}\n`,
        );
      }
    },
    done() {
      active.clear();
      draw(true);
    },
  };
}

export const pull: Command = {
  name: 'pull',
  summary: 'copy an image or index from a registry into the local store',
  usage: 'REF [--platform OS/ARCH]... [--cache DIR] [--json]',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele pull 127.0.0.1:5000/stele/base:1.0',
    'stele pull registry.example.com/stele/kernel:6.6 --platform linux/arm64 --ca-file ca.pem',
    'stele pull 127.0.0.1:5000/stele/base@sha256:4f5e… --json 2>events.jsonl',
  ],
  options: {
    platform: {
      type: 'string',
      multiple: true,
      placeholder: 'OS/ARCH',
      description: 'only this platform out of an index',
    },
    ...CACHE,
    ...REGISTRY,
    ...JSON_OPT,
  },
  async run(ctx) {
    const r = ref(ctx.positionals[0] as string);
    return userErrors(async () => {
      const store = await openStore(ctx);
      const client = new RegistryClient(r.registry, registryOptions(ctx));
      const p = progress(ctx.io, ctx.values.json === true, 'pull');
      try {
        const name = formatImageRef(r);
        const res = await copy(client.repository(r.repository), referenceTarget(r), store, [name], {
          platforms: platforms(ctx.values.platform),
          onEvent: p.onEvent,
        });
        p.done();
        const out = {
          name,
          digest: res.descriptor.digest,
          mediaType: res.descriptor.mediaType,
          blobsCopied: res.blobsCopied,
          blobsSkipped: res.blobsSkipped,
          bytes: res.bytesCopied,
          requests: client.stats.requests,
        };
        ctx.io.stdout.write(
          ctx.values.json
            ? `${JSON.stringify(out)}\n`
            : `${name}@${out.digest} (${out.blobsCopied} blobs pulled, ${out.blobsSkipped} present)\n`,
        );
        return 0;
      } finally {
        await client.close();
      }
    });
  },
};

export const push: Command = {
  name: 'push',
  summary: 'copy an image from the local store to a registry (several --from: a multi-arch index)',
  usage: 'REF [--from NAME]... [--cache DIR] [--json]',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele push 127.0.0.1:5000/stele/base:1.0',
    'stele push 127.0.0.1:5000/stele/base:1.0 --from local/base:amd64 --from local/base:arm64',
    'stele push registry.example.com/team/app:2 --ca-file ca.pem --json',
  ],
  options: {
    from: {
      type: 'string',
      multiple: true,
      placeholder: 'NAME',
      description: 'store entry to push (default: REF itself)',
    },
    ...CACHE,
    ...REGISTRY,
    ...JSON_OPT,
  },
  async run(ctx) {
    const r = ref(ctx.positionals[0] as string);
    if (r.digest && !r.tag) throw new UsageError('stele push: REF needs a tag to push to');
    const from = (ctx.values.from as string[] | undefined) ?? [];
    return userErrors(async () => {
      const store = await openStore(ctx);
      const client = new RegistryClient(r.registry, registryOptions(ctx));
      const repo = client.repository(r.repository);
      const p = progress(ctx.io, ctx.values.json === true, 'push');
      const tag = r.tag ?? 'latest';
      try {
        let digest: string;
        let copied = 0;
        if (from.length > 1) {
          const res = await pushMultiArch(store, from, repo, tag, { onEvent: p.onEvent });
          digest = res.index.digest;
        } else {
          const src = from[0] ?? formatImageRef({ ...r, digest: undefined });
          const res = await copy(store, src, repo, [tag], { onEvent: p.onEvent });
          digest = res.descriptor.digest;
          copied = res.blobsCopied;
        }
        p.done();
        const name = formatImageRef({ ...r, digest: undefined });
        const out = {
          name,
          digest,
          blobsCopied: copied,
          requests: client.stats.requests,
          bytesUp: client.stats.bytesUp,
        };
        ctx.io.stdout.write(ctx.values.json ? `${JSON.stringify(out)}\n` : `${name}@${digest}\n`);
        return 0;
      } finally {
        await client.close();
      }
    });
  },
};

const cacheLs: Command = {
  name: 'ls',
  summary: 'list the images in the local store',
  usage: '[--cache DIR] [--json]',
  examples: ['stele cache ls', 'stele cache ls --json | jq -r ".[].name"'],
  options: { ...CACHE, ...JSON_OPT },
  async run(ctx) {
    return userErrors(async () => {
      const store = await openStore(ctx);
      const list = await store.list();
      if (ctx.values.json) {
        ctx.io.stdout.write(
          `${JSON.stringify(
            list.map((e) => ({ name: e.name, ...e.descriptor, annotations: undefined })),
            null,
            2,
          )}\n`,
        );
      } else {
        const w = Math.max(4, ...list.map((e) => e.name.length));
        for (const e of list)
          ctx.io.stdout.write(`${e.name.padEnd(w)}  ${e.descriptor.digest}  ${e.descriptor.mediaType}\n`);
      }
      return 0;
    });
  },
};

const cacheImport: Command = {
  name: 'import',
  summary: 'import an image archive into the store: an OCI image layout tar or a `docker save` tar',
  usage: 'FILE.tar [--cache DIR]',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele cache import base.tar',
    'docker save alpine:3.20 -o alpine.tar && stele cache import alpine.tar',
    'stele cache import image.tar --cache ./cache --json',
  ],
  options: { ...CACHE, ...JSON_OPT },
  async run(ctx) {
    return userErrors(async () => {
      const store = await openStore(ctx);
      const res = await importArchive(store, resolve(ctx.io.cwd, ctx.positionals[0] as string));
      ctx.io.stdout.write(
        ctx.values.json
          ? `${JSON.stringify(res)}\n`
          : `imported ${res.blobs} blobs: ${res.names.join(', ') || '(no named entries)'}\n`,
      );
      return 0;
    });
  },
};

const cacheExport: Command = {
  name: 'export',
  summary: 'write store entries as an OCI image layout tar',
  usage: 'REF... -o FILE.tar [--cache DIR]',
  positionals: { min: 1, max: 100 },
  examples: ['stele cache export 127.0.0.1:5000/stele/base:1.0 -o base.tar'],
  options: { output: { type: 'string', short: 'o', placeholder: 'FILE', description: 'tar file to write' }, ...CACHE },
  async run(ctx) {
    const out = str(ctx.values.output);
    if (!out) throw new UsageError('stele cache export: -o FILE.tar is required');
    return userErrors(async () => {
      const store = await openStore(ctx);
      const res = await exportArchive(store, ctx.positionals, resolve(ctx.io.cwd, out));
      ctx.io.stdout.write(`wrote ${out} (${res.blobs} blobs)\n`);
      return 0;
    });
  },
};

const cacheRm: Command = {
  name: 'rm',
  summary: "remove a name from the store (blobs go at the next 'cache gc')",
  usage: 'REF... [--cache DIR]',
  positionals: { min: 1, max: 100 },
  examples: ['stele cache rm 127.0.0.1:5000/stele/base:1.0'],
  options: { ...CACHE },
  async run(ctx) {
    return userErrors(async () => {
      const store = await openStore(ctx);
      for (const name of ctx.positionals) {
        if (!(await store.untag(name)))
          throw new UserError(`'${name}' is not in the store ${store.root} (see 'stele cache ls')`);
      }
      return 0;
    });
  },
};

const cacheGc: Command = {
  name: 'gc',
  summary: 'delete blobs no stored image uses (and their unpacked copies)',
  usage: '[--unpacked] [--dry-run] [--cache DIR]',
  examples: ['stele cache gc', 'stele cache gc --dry-run --json', 'stele cache gc --unpacked'],
  options: {
    unpacked: {
      type: 'boolean',
      description: "also remove every unpacked layer copy (disk back; 'stele build' unpacks again when needed)",
    },
    'dry-run': { type: 'boolean', description: 'only report what would go' },
    ...CACHE,
    ...JSON_OPT,
  },
  async run(ctx) {
    return userErrors(async () => {
      const store = await openStore(ctx);
      const dryRun = ctx.values['dry-run'] === true;
      const res = await store.gc({ dryRun });
      // Unpacked copies of the layers that went (stele build's layer cache) go too.
      const unpacked = await pruneUnpacked(store, {
        dryRun,
        gone: new Set(res.removed),
        all: ctx.values.unpacked === true,
      });
      ctx.io.stdout.write(
        ctx.values.json
          ? `${JSON.stringify({ ...res, unpacked })}\n`
          : `${dryRun ? 'would remove' : 'removed'} ${res.removed.length} blobs (${human(res.bytes)}), kept ${res.kept}; ` +
              `${unpacked.removed.length} unpacked layers (${human(unpacked.bytes)})\n`,
      );
      return 0;
    });
  },
};

export const cache: Command = {
  name: 'cache',
  summary: 'the local image store (an OCI image layout, readable by LinuxKit)',
  examples: ['stele cache ls', 'stele cache import base.tar', 'stele cache export REF -o base.tar', 'stele cache gc'],
  subcommands: [cacheLs, cacheImport, cacheExport, cacheRm, cacheGc],
};

/** COSIGN_PASSWORD (cosign's variable) or STELE_KEY_PASSWORD; else asked on a TTY. */
async function passphrase(io: Io, confirm: boolean): Promise<string> {
  const env = io.env.STELE_KEY_PASSWORD ?? io.env.COSIGN_PASSWORD;
  if (env !== undefined) return env;
  if (!process.stdin.isTTY || !io.stderr.isTTY) {
    throw new UserError('no passphrase: set COSIGN_PASSWORD or STELE_KEY_PASSWORD (stdin is not a terminal)');
  }
  const ask = (q: string) =>
    new Promise<string>((res) => {
      const rl = createInterface({ input: process.stdin, output: io.stderr, terminal: true });
      const out = rl as unknown as { _writeToOutput: (s: string) => void };
      io.stderr.write(q);
      out._writeToOutput = () => {};
      rl.question('', (a) => {
        rl.close();
        io.stderr.write('\n');
        res(a);
      });
    });
  const a = await ask('Enter passphrase for the private key: ');
  if (confirm && (await ask('Enter it again: ')) !== a) throw new UserError('passphrases do not match');
  return a;
}

const keyGenerate: Command = {
  name: 'generate',
  summary: 'write an ECDSA P-256 key pair (cosign format: PREFIX.key encrypted, PREFIX.pub)',
  usage: '[--output-prefix PREFIX] [--force]',
  examples: [
    'stele key generate',
    'stele key generate --output-prefix keys/release   # passphrase from COSIGN_PASSWORD or a prompt',
  ],
  options: {
    'output-prefix': { type: 'string', placeholder: 'PREFIX', description: "file name prefix (default 'cosign')" },
    force: { type: 'boolean', description: 'overwrite existing files' },
  },
  async run(ctx) {
    const prefix = resolve(ctx.io.cwd, str(ctx.values['output-prefix']) ?? 'cosign');
    if (!ctx.values.force) {
      for (const f of [`${prefix}.key`, `${prefix}.pub`]) {
        if (
          await readFile(f).then(
            () => true,
            () => false,
          )
        ) {
          throw new UserError(`${f} exists (use --force to overwrite)`);
        }
      }
    }
    const pass = await passphrase(ctx.io, true);
    const kp = await generateKeyPair(pass);
    for (const [file, text, mode] of [
      [`${prefix}.key`, kp.privatePem, 0o600],
      [`${prefix}.pub`, kp.publicPem, 0o644],
    ] as const) {
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, text, { mode });
      await chmod(tmp, mode);
      await rename(tmp, file);
    }
    ctx.io.stdout.write(`Private key written to ${prefix}.key\nPublic key written to ${prefix}.pub\n`);
    return 0;
  },
};

export const key: Command = {
  name: 'key',
  summary: 'signing keys (cosign-compatible)',
  examples: ['stele key generate', 'stele key generate --output-prefix release'],
  subcommands: [keyGenerate],
};

export const sign: Command = {
  name: 'sign',
  summary: 'sign an image in a registry, cosign-style (an index and each of its manifests)',
  usage: 'REF --key FILE.key',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele sign 127.0.0.1:5000/stele/base:1.0 --key cosign.key',
    'stele sign 127.0.0.1:5000/stele/base:1.0 --key release.key --json   # passphrase from COSIGN_PASSWORD',
  ],
  options: {
    key: { type: 'string', placeholder: 'FILE', description: 'cosign private key' },
    ...REGISTRY,
    ...JSON_OPT,
  },
  async run(ctx) {
    const r = ref(ctx.positionals[0] as string);
    const keyFile = str(ctx.values.key);
    if (!keyFile) throw new UsageError('stele sign: --key FILE is required');
    return userErrors(async () => {
      const pem = await readFile(resolve(ctx.io.cwd, keyFile), 'utf8');
      const priv = await loadPrivateKey(pem, await passphrase(ctx.io, false));
      const client = new RegistryClient(r.registry, registryOptions(ctx));
      try {
        const repo = client.repository(r.repository);
        const desc = await repo.resolve(referenceTarget(r));
        const signed = await signImage(repo, desc, priv, `${r.registry}/${r.repository}`);
        if (ctx.values.json) ctx.io.stdout.write(`${JSON.stringify(signed)}\n`);
        else for (const s of signed) ctx.io.stdout.write(`signed ${s.digest} → :${s.tag}\n`);
        return 0;
      } finally {
        await client.close();
      }
    });
  },
};

export const verify: Command = {
  name: 'verify',
  summary: 'check the cosign signatures of an image (and of each manifest of an index)',
  usage: 'REF --key FILE.pub',
  positionals: { min: 1, max: 1 },
  examples: ['stele verify 127.0.0.1:5000/stele/base:1.0 --key cosign.pub'],
  options: { key: { type: 'string', placeholder: 'FILE', description: 'PEM public key' }, ...REGISTRY, ...JSON_OPT },
  async run(ctx) {
    const r = ref(ctx.positionals[0] as string);
    const keyFile = str(ctx.values.key);
    if (!keyFile) throw new UsageError('stele verify: --key FILE is required');
    return userErrors(async () => {
      const pub = loadPublicKey(await readFile(resolve(ctx.io.cwd, keyFile), 'utf8'));
      const client = new RegistryClient(r.registry, registryOptions(ctx));
      try {
        const repo = client.repository(r.repository);
        const desc = await repo.resolve(referenceTarget(r));
        const reports = await verifyImage(repo, desc, pub);
        if (ctx.values.json) ctx.io.stdout.write(`${JSON.stringify(reports)}\n`);
        else
          for (const rep of reports)
            ctx.io.stdout.write(
              `verified ${rep.digest} (${rep.verified.length} valid signature${rep.verified.length === 1 ? '' : 's'})\n`,
            );
        return 0;
      } finally {
        await client.close();
      }
    });
  },
};

export const ociCommands: Command[] = [cache, pull, push, key, sign, verify];
