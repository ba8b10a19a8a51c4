// A seeded fuzz run over the readers of untrusted archives: `stele cache import` (OCI image layout
// tars and `docker save` tars, importArchive) and the layer readers (the tar scanner of
// pipeline/tarfmt.ts, the layer cache of pipeline/layercache.ts). Good inputs are cut at random
// places, have random bits flipped (mostly in tar headers), get crafted headers spliced in (with
// valid checksums, so the readers get past them: `../` and absolute names, NULs, sizes beyond the
// end, base-256 and pax overrides, links out of the tree), or carry JSON of the wrong shape.
// Every case must end in a result or one of our typed errors (ArchiveError, BuildError,
// TarFormatError) — never another exception, an unhandled stream error or a hang — and nothing
// may be written outside the store. A failing case prints its seed and number; the same seed
// replays it (FUZZ_SEED=… FUZZ_CASES=… to explore further).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ArchiveError, exportArchive, importArchive, MediaType, Store, sha256 } from '@stele/oci';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildError } from '../src/pipeline/errors.ts';
import { unpackedLayer } from '../src/pipeline/layercache.ts';
import { TarFormatError, TarScanner } from '../src/pipeline/tarfmt.ts';
import { layerTar, storeImage } from './build-images.ts';
import { prng } from './prng.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const CASES = Number(process.env.FUZZ_CASES ?? 1);
/** Cases per reader (times FUZZ_CASES): 13,000 in all. */
const COUNTS = { ociImport: 1200, dockerImport: 800, layerCache: 1000, scanner: 10_000 };

let work: string;
/** Errors no test awaited: a stream error without a listener ends up here. */
const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => uncaught.push(err);

beforeAll(() => {
  // Thousands of small stores: on a tmpfs when there is one (each blob is fsynced).
  work = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'stele-fuzz-'));
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
});
afterAll(() => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
  rmSync(work, { recursive: true, force: true });
});

// ---- mutations ----

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)] as T;

/** Offsets of the 512-byte blocks that read as tar headers (ustar magic). */
function headerBlocks(tar: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 512 <= tar.length; i += 512) {
    if (tar.toString('latin1', i + 257, i + 262) === 'ustar') out.push(i);
  }
  return out;
}

/** Writes a valid checksum into the header block at `at` (so readers go past it). */
function sealHeader(b: Buffer, at: number): void {
  b.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[at + i] ?? 0;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 8, 'latin1');
}

/** A header block of our own: `fields` written at their ustar offsets, checksum sealed. */
function craftedHeader(name: string, opts: { flag?: string; size?: Buffer | string; link?: string } = {}): Buffer {
  const b = Buffer.alloc(512);
  b.write(name.slice(0, 100), 0, 'utf8');
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  const size = opts.size ?? '00000000000\0';
  if (Buffer.isBuffer(size)) size.copy(b, 124, 0, 12);
  else b.write(size, 124, 12, 'latin1');
  b.write('14000000000\0', 136, 'latin1');
  b.write(opts.flag ?? '0', 156, 'latin1');
  if (opts.link) b.write(opts.link.slice(0, 100), 157, 'utf8');
  b.write('ustar\x0000', 257, 'latin1');
  sealHeader(b, 0);
  return b;
}

function octal(n: number, len = 12): string {
  return `${n.toString(8).padStart(len - 1, '0')}\0`;
}

/** A pax extended header ('x' or 'g') carrying `records`, padded to whole blocks. */
function paxHeader(records: Record<string, string>, flag = 'x'): Buffer {
  const body = Object.entries(records)
    .map(([k, v]) => {
      const rest = ` ${k}=${v}\n`;
      let len = Buffer.byteLength(rest) + 1;
      while (String(len).length + Buffer.byteLength(rest) !== len) len++;
      return `${len}${rest}`;
    })
    .join('');
  const data = Buffer.from(body);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([craftedHeader('PaxHeader', { flag, size: octal(data.length) }), data, pad]);
}

const NASTY_NAMES = [
  '../../etc/evil',
  '/etc/evil',
  'blobs/sha256/../../../evil',
  'a/../../evil',
  '..',
  'bin/sh\0hidden',
  'index.json',
  'manifest.json',
  `blobs/sha256/${'a'.repeat(64)}`,
  `blobs/sha512/${'b'.repeat(128)}`,
  `blobs/constructor/${'c'.repeat(64)}`,
  'x'.repeat(300),
  '\n\x1b[2J',
];

/** One crafted entry (header, and contents when it has any) to splice into a tar. */
function craftedEntry(r: Rand): Buffer {
  const name = pick(r, NASTY_NAMES);
  switch (int(r, 9)) {
    case 0: // a size far beyond the end of the archive
      return craftedHeader(name, { size: octal(2 ** 33 - 1) });
    case 1: // base-256 size, maybe negative
      return craftedHeader(name, {
        size: Buffer.from([int(r, 2) ? 0xff : 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, int(r, 256)]),
      });
    case 2: // garbage in the size field
      return craftedHeader(name, {
        size: pick(r, ['zzzzzzzzzzz\0', '   -12     ', '\0\0\0\0\0\0\0\0\0\0\0\0', '7777777777777']),
      });
    case 3: // a pax header that renames the next entry and overrides its size
      return Buffer.concat([
        paxHeader({ path: pick(r, NASTY_NAMES), size: pick(r, ['0', '-1', '1e9', 'x', '99999999999999999999']) }),
        craftedHeader('next', { size: octal(0) }),
      ]);
    case 4: // a global pax header with junk records
      return paxHeader({ path: '../../global', linkpath: '/etc/shadow', mtime: 'NaN' }, 'g');
    case 5: // a GNU long name ('L'), maybe cut short
      return Buffer.concat([
        craftedHeader('././@LongLink', { flag: 'L', size: octal(600) }),
        Buffer.alloc(512 * (1 + int(r, 2)), '../'),
      ]);
    case 6: // links out of the tree
      return craftedHeader(name, {
        flag: pick(r, ['1', '2']),
        link: pick(r, ['../../etc/passwd', '/etc/shadow', name]),
      });
    case 7: // a pax record that lies about its length
      return Buffer.concat([
        craftedHeader('PaxHeader', { flag: 'x', size: octal(20) }),
        Buffer.concat([Buffer.from('99 path=../evil\n'), Buffer.alloc(496)]),
      ]);
    default: // a directory, a fifo, a device, an unknown type
      return craftedHeader(name, { flag: pick(r, ['5', '6', '3', '4', 'Z', '\0', 'S']) });
  }
}

/** One mutated copy of `good`; `what` says how (for a failing case's report). */
function mutate(r: Rand, good: Buffer): { data: Buffer; what: string } {
  const headers = headerBlocks(good);
  const kind = headers.length ? int(r, 5) : int(r, 3); // crafted headers only where there are headers
  if (kind === 0) {
    const at = int(r, 2) ? int(r, good.length) : (pick(r, headers) ?? 0) + int(r, 3) * 512;
    return { data: good.subarray(0, at), what: `cut at ${at}` };
  }
  if (kind === 1 || kind === 2) {
    const data = Buffer.from(good);
    const flips: number[] = [];
    for (let i = 1 + int(r, 8); i > 0; i--) {
      // Mostly inside a header block (where parsing decides things), else anywhere.
      const at = kind === 1 && headers.length ? (pick(r, headers) as number) + int(r, 512) : int(r, data.length);
      data[at] = (data[at] ?? 0) ^ (1 << int(r, 8));
      flips.push(at);
    }
    // Half of the header flips keep a valid checksum, so the reader acts on the changed field.
    if (kind === 1 && headers.length && int(r, 2)) {
      for (const h of new Set(flips.map((f) => f - (f % 512)))) sealHeader(data, h);
    }
    return { data, what: `bits flipped at ${flips.join(',')}${kind === 1 ? ' (headers)' : ''}` };
  }
  if (kind === 3) {
    const at = pick(r, headers) ?? 0;
    const entry = craftedEntry(r);
    return { data: Buffer.concat([good.subarray(0, at), entry, good.subarray(at)]), what: `crafted entry at ${at}` };
  }
  // A header field rewritten with a crafted value, checksum sealed.
  const data = Buffer.from(good);
  const h = pick(r, headers) ?? 0;
  const field = pick(r, [
    [0, 100, pick(r, NASTY_NAMES)],
    [124, 12, octal(int(r, 2) ? 2 ** 33 - 1 : int(r, 4096))],
    [156, 1, pick(r, ['1', '2', '5', 'x', 'g', 'L', 'K', 'Z'])],
    [157, 100, pick(r, NASTY_NAMES)],
    [345, 155, pick(r, ['..', '/abs', '../../up'])],
  ] as const);
  data.fill(0, h + field[0], h + field[0] + field[1]);
  data.write(field[2].slice(0, field[1]), h + field[0], 'latin1');
  sealHeader(data, h);
  return { data, what: `header at ${h}: field ${field[0]} = ${JSON.stringify(field[2])}` };
}

// ---- the inputs ----

function tarOf(entries: [string, Buffer | string][]): Promise<Buffer> {
  return layerTar(entries.map(([path, data]) => ({ path, data })));
}

const LAYER = [
  { path: 'etc' },
  { path: 'etc/hello', data: 'hello\n', mode: 0o640 },
  { path: 'bin' },
  { path: 'bin/tool', data: Buffer.alloc(700, 't') },
  { path: `usr/${'long-name-'.repeat(12)}`, data: 'long' },
  { path: 'etc/link', type: 'symlink' as const, linkname: '../bin/tool' },
  { path: 'bin/hard', type: 'hardlink' as const, linkname: 'bin/tool' },
];

/** An OCI layout archive of one image (two layers), as `stele cache export` writes it. */
async function ociArchive(): Promise<Buffer> {
  const store = await Store.open(join(work, 'seed-oci'));
  await storeImage(store, 'docker.io/fuzz/oci:1', [LAYER, [{ path: 'x', data: 'second layer' }]], { Cmd: ['/x'] });
  const file = join(work, 'seed-oci.tar');
  await exportArchive(store, ['docker.io/fuzz/oci:1'], file);
  return readFileSync(file);
}

/** A classic `docker save` archive: manifest.json, a config, one directory per layer. */
async function dockerArchive(): Promise<Buffer> {
  const layer = await layerTar(LAYER);
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [sha256(layer)] },
  });
  const cfgName = `${sha256(Buffer.from(config)).slice(7)}.json`;
  return tarOf([
    ['abc/layer.tar', layer],
    ['abc/VERSION', '1.0'],
    [cfgName, config],
    ['manifest.json', JSON.stringify([{ Config: cfgName, RepoTags: ['fuzz/docker:1'], Layers: ['abc/layer.tar'] }])],
    ['repositories', '{}'],
  ]);
}

/** JSON of the wrong shape for index.json / manifest.json, or not JSON at all. */
function wrongJson(r: Rand): string {
  return pick(r, [
    'null',
    '[]',
    '{}',
    '"index"',
    '{"schemaVersion":2,"manifests":null}',
    '{"schemaVersion":2,"manifests":[null]}',
    '{"schemaVersion":2,"manifests":[{"digest":"sha256:zz","size":-1,"mediaType":1}]}',
    `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:${'0'.repeat(64)}","size":2,"annotations":{"org.opencontainers.image.ref.name":["x"]}}]}`,
    `{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:${'1'.repeat(64)}","size":1,"platform":"linux"}]}`,
    '[{"Config":null,"Layers":[]}]',
    '[{"Config":"x.json","Layers":[1,2]}]',
    '[{"Config":"x.json","Layers":[],"RepoTags":[{"a":1}]}]',
    '[{"Config":"../../etc/passwd","Layers":["../../etc/shadow"],"RepoTags":["UPPER:1"]}]',
    '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"constructor:aa","size":1}]}',
    '{"a": \'single\'}',
    '\u0000\u0001\u0002',
    '{'.repeat(10_000),
  ]);
}

// ---- checks ----

/** Every file under `root`, relative, except the store and the inputs. */
function outsideFiles(root: string, skip: string[]): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (skip.includes(p)) continue;
      if (e.isDirectory()) walk(p);
      else out.push(relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

/** The store holds nothing but its own kinds of files (blobs by digest, index, the unpacked cache). */
function strayInStore(root: string): string[] {
  const allowed = [
    /^oci-layout$/,
    /^index\.json$/,
    /^blobs\/sha(256\/[0-9a-f]{64}|512\/[0-9a-f]{128})$/,
    /^unpacked\/sha256\/[0-9a-f]{64}\.(tar|json)$/,
  ];
  return outsideFiles(root, []).filter((f) => !allowed.some((a) => a.test(f)));
}

/** `sandbox` holds its sentinel file and the stores, and they hold only what a store holds. */
function expectNothingOutsideStores(sandbox: string): void {
  const stores = readdirSync(sandbox)
    .filter((d) => d.startsWith('store-'))
    .map((d) => join(sandbox, d));
  expect(outsideFiles(sandbox, stores)).toEqual(['sentinel']);
  for (const d of stores) expect(strayInStore(d), d).toEqual([]);
}

interface Failure {
  reader: string;
  n: number;
  what: string;
  error: string;
}

/**
 * Runs one case: it must settle within 20 s, and any error must be `typed`. With FUZZ_SAVE=DIR
 * the input of a failing case is written there.
 */
async function runCase(
  failures: Failure[],
  reader: string,
  n: number,
  what: string,
  typed: (err: unknown) => boolean,
  fn: () => Promise<unknown>,
  input?: Buffer,
): Promise<void> {
  const before = failures.length;
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((res) => {
    timer = setTimeout(() => res('hang'), 20_000);
  });
  try {
    const result = await Promise.race([fn().then(() => 'ok' as const), hang]);
    if (result === 'hang') failures.push({ reader, n, what, error: 'did not settle within 20 s' });
  } catch (err) {
    if (!typed(err)) {
      failures.push({ reader, n, what, error: `${(err as Error)?.name}: ${(err as Error)?.stack ?? String(err)}` });
    }
  } finally {
    clearTimeout(timer);
  }
  if (uncaught.length) {
    const e = uncaught.splice(0).map((u) => (u as Error)?.stack ?? String(u));
    failures.push({ reader, n, what, error: `uncaught: ${e.join('\n')}` });
  }
  const keep = process.env.FUZZ_SAVE;
  if (keep && input && failures.length > before) {
    mkdirSync(keep, { recursive: true });
    writeFileSync(join(keep, `${reader.replace(/\W+/g, '-')}-${n}.bin`), input);
  }
}

function report(failures: Failure[]): string {
  return failures
    .slice(0, 5)
    .map((f) => `${f.reader} case ${f.n} (seed ${SEED}): ${f.what}\n${f.error}`)
    .join('\n\n');
}

describe(`fuzzing the archive and layer readers (seed ${SEED})`, () => {
  it(`cache import: ${COUNTS.ociImport * CASES} OCI layout and ${COUNTS.dockerImport * CASES} docker save archives`, async () => {
    const r = prng(SEED);
    const inputs = join(work, 'inputs');
    mkdirSync(inputs, { recursive: true });
    const bases = { oci: await ociArchive(), docker: await dockerArchive() };
    const sandbox = join(work, 'import');
    mkdirSync(sandbox);
    writeFileSync(join(sandbox, 'sentinel'), 'must stay alone');
    const failures: Failure[] = [];
    let accepted = 0;
    for (const [kind, count] of [
      ['oci', COUNTS.ociImport * CASES],
      ['docker', COUNTS.dockerImport * CASES],
    ] as const) {
      const base = bases[kind];
      for (let n = 0; n < count; n++) {
        let input: { data: Buffer; what: string };
        if (int(r, 8) === 0) {
          const json = wrongJson(r);
          const name = kind === 'oci' ? 'index.json' : 'manifest.json';
          const rest = kind === 'oci' ? [] : ([['c.json', '{"os":"linux"}']] as [string, string][]);
          input = { data: await tarOf([...rest, [name, json]]), what: `${name} = ${json.slice(0, 80)}` };
        } else input = mutate(r, base);
        const file = join(inputs, `${kind}-${n}.tar`);
        writeFileSync(file, input.data);
        // A store per 50 cases: later cases meet blobs earlier ones left (the path of item 1).
        const store = join(sandbox, `store-${kind}-${Math.floor(n / 50)}`);
        await runCase(
          failures,
          `import ${kind}`,
          n,
          input.what,
          (e) => e instanceof ArchiveError,
          async () => {
            await importArchive(await Store.open(store), file);
            accepted++;
          },
          input.data,
        );
        rmSync(file);
      }
    }
    expect(failures, report(failures)).toEqual([]);
    expectNothingOutsideStores(sandbox);
    expect(readdirSync(inputs)).toEqual([]);
    expect(accepted).toBeGreaterThan(0); // some mutations are harmless: the good path is exercised too
  }, 300_000);

  it(`layer cache: ${COUNTS.layerCache * CASES} damaged layers, gzip'd and plain`, async () => {
    const r = prng(SEED + 1);
    const good = await layerTar(LAYER);
    const sandbox = join(work, 'layers');
    mkdirSync(sandbox);
    writeFileSync(join(sandbox, 'sentinel'), 'must stay alone');
    const failures: Failure[] = [];
    let store = await Store.open(join(sandbox, 'store-0'));
    for (let n = 0; n < COUNTS.layerCache * CASES; n++) {
      if (n % 200 === 0) store = await Store.open(join(sandbox, `store-${n / 200}`));
      const { data: tar, what } = mutate(r, good);
      const gzip = int(r, 3) !== 0;
      // Damage the gzip stream itself now and then, after compressing.
      let blob = gzip ? gzipSync(tar) : tar;
      let how = what;
      if (gzip && int(r, 6) === 0) {
        const m = mutate(r, blob);
        blob = m.data;
        how = `${what}; gzip ${m.what}`;
      }
      const withDiffId = int(r, 2) === 0;
      await runCase(
        failures,
        'layer cache',
        n,
        `${gzip ? 'gzip' : 'plain'}: ${how}${withDiffId ? ' (diff_id of the good tar)' : ''}`,
        (e) => e instanceof BuildError,
        async () => {
          const w = await store.writeBlob(blob);
          const desc = { mediaType: gzip ? MediaType.OciLayerGzip : MediaType.OciLayer, ...w };
          const diffId = withDiffId ? `sha256:${createHash('sha256').update(good).digest('hex')}` : undefined;
          const got = await unpackedLayer(store, desc, diffId);
          // Whatever it accepted is what the tar holds: offsets inside it, sizes within it.
          for (const e of got.entries) {
            if (e.offset + e.size > got.size) throw new Error(`entry ${e.name} runs past the tar`);
          }
          // The cached copy, damaged in place, is never served as it is.
          if (got.size > 0 && int(r, 4) === 0) {
            const bytes = readFileSync(got.tar);
            const at = int(r, bytes.length);
            bytes[at] = (bytes[at] ?? 0) ^ 0x40;
            writeFileSync(got.tar, bytes);
            const again = await unpackedLayer(store, desc, diffId);
            if (again.diffId !== got.diffId) throw new Error('the cache served a damaged tar');
          }
        },
      );
    }
    expect(failures, report(failures)).toEqual([]);
    expectNothingOutsideStores(sandbox);
  }, 300_000);

  it(`tar scanner: ${COUNTS.scanner * CASES} damaged tars, pushed in random chunks`, async () => {
    const r = prng(SEED + 2);
    const good = await layerTar(LAYER);
    const failures: Failure[] = [];
    for (let n = 0; n < COUNTS.scanner * CASES; n++) {
      const { data, what } = mutate(r, good);
      const cuts: number[] = [];
      await runCase(
        failures,
        'tar scanner',
        n,
        what,
        (e) => e instanceof TarFormatError,
        async () => {
          let last = -1;
          const scanner = new TarScanner((e) => {
            if (!Number.isSafeInteger(e.offset) || e.offset <= last || e.offset > data.length + 512) {
              throw new Error(`entry ${JSON.stringify(e.name)} at offset ${e.offset}`);
            }
            if (!Number.isSafeInteger(e.size) || e.size < 0) throw new Error(`entry size ${e.size}`);
            last = e.offset;
          });
          for (let at = 0; at < data.length; ) {
            const len = 1 + int(r, 2048);
            cuts.push(len);
            scanner.push(data.subarray(at, at + len));
            at += len;
          }
          scanner.end();
        },
      );
    }
    expect(failures, report(failures)).toEqual([]);
  });
});
