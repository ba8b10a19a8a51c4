/**
 * Input a hostile user crafts (issue 12): oversized and binary files, floods of errors,
 * terminal escapes, deep nesting, other encodings. Each gets one bounded, located error.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  countErrors,
  decodeManifest,
  escapeControl,
  formatError,
  MAX_ERRORS,
  MAX_MANIFEST_BYTES,
  type ManifestError,
  type ParseResult,
  parseOsManifest,
  readManifestFile,
} from '../src/index.ts';

function errorsOf(r: ParseResult<unknown>): ManifestError[] {
  return r.ok ? [] : r.errors;
}

const lines = (r: ParseResult<unknown>) => errorsOf(r).map(formatError);

describe('size and number of errors are bounded', () => {
  it(`a text over ${MAX_MANIFEST_BYTES} bytes is one error that names the limit`, () => {
    const text = `# ${'x'.repeat(MAX_MANIFEST_BYTES)}\ninit: [alpine]\n`;
    expect(lines(parseOsManifest(text, 'big.yml'))).toEqual([
      'big.yml: file is larger than 1 MiB, the limit for a manifest',
    ]);
  });

  it(`at most ${MAX_ERRORS} errors, then one that counts the rest`, () => {
    const services = Array.from({ length: 1000 }, (_, i) => `  - {name: s${i}, image: alpine, bogus: 1}`);
    const errs = errorsOf(parseOsManifest(`services:\n${services.join('\n')}\n`, 'm.yml'));
    expect(errs).toHaveLength(MAX_ERRORS + 1);
    expect(errs[MAX_ERRORS - 1]?.path).toBe(`services.${MAX_ERRORS - 1}.bogus`);
    expect(errs[MAX_ERRORS]).toMatchObject({ line: MAX_ERRORS + 2, message: '… and 900 more errors', more: 900 });
    expect(countErrors(errs)).toBe(1000);
  });

  it('a long value is cut in the message, keeping its start and the explanation', () => {
    const name = 'A!'.repeat(500_000);
    const [e] = errorsOf(parseOsManifest(`services:\n  - name: "${name}"\n    image: alpine\n`, 'm.yml'));
    expect(e?.message.length).toBeLessThanOrEqual(300);
    expect(e?.message).toMatch(/^name 'A!A!A!/);
    expect(e?.message).toMatch(/999\d+ characters/);
    expect(e?.message).toMatch(/must be letters and digits, separated by single '\.', '_' or '-'$/);
  });

  it('a long key is cut in the path', () => {
    const key = 'k'.repeat(100_000);
    // An explicit key (`? KEY`): YAML limits implicit keys to 1024 characters.
    const [e] = errorsOf(parseOsManifest(`? ${key}\n: 1\n`, 'm.yml'));
    expect(e?.message).toMatch(/^unknown key 'kkk/);
    expect(e?.path).toMatch(/^\["kkk.*characters cut.*kkk"\]$/);
    expect(e?.path.length).toBeLessThan(100);
    expect(e?.message.length).toBeLessThanOrEqual(300);
  });

  it('binary garbage gives a single error, not a flood', () => {
    // a fixed pseudo-random byte string (xorshift), the same on every run
    const bytes = new Uint8Array(200_000);
    let x = 2463534242;
    for (let i = 0; i < bytes.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      bytes[i] = x & 0xff;
    }
    const r = decodeManifest(bytes, 'garbage.yml');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors).toHaveLength(1);
      expect(r.errors[0]?.message).toMatch(/not UTF-8 text/);
    }
    // Read as text anyway (as a caller with a string would), the errors stay bounded.
    const errs = errorsOf(parseOsManifest(Buffer.from(bytes).toString('latin1'), 'garbage.yml'));
    expect(errs.length).toBeLessThanOrEqual(MAX_ERRORS + 1);
    for (const line of errs.map(formatError)) expect(line.length).toBeLessThan(2000);
  });

  it(`readManifestFile stops reading at the limit (/dev/zero)`, async () => {
    const r = await readManifestFile('/dev/zero', '/dev/zero');
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.errors.map(formatError)).toEqual(['/dev/zero: file is larger than 1 MiB, the limit for a manifest']);
  });
});

describe('encodings', () => {
  const text = 'init: [linuxkit/init:abc]\n';

  it.each([
    ['UTF-16 little-endian with a BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')])],
    ['UTF-16 little-endian without a BOM', Buffer.from(text, 'utf16le')],
    ['UTF-16 big-endian with a BOM', Buffer.from(Buffer.from(`\ufeff${text}`, 'utf16le').swap16())],
    ['UTF-16 big-endian without a BOM', Buffer.from(Buffer.from(text, 'utf16le').swap16())],
  ])('%s is named as UTF-16', (_name, bytes) => {
    const r = decodeManifest(bytes, 'u16.yml');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]?.message).toMatch(/^the file is UTF-16(LE|BE) text: save it as UTF-8/);
  });

  it('UTF-16 read as UTF-8 text by a caller is named too', () => {
    const asUtf8 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]).toString('utf8');
    expect(errorsOf(parseOsManifest(asUtf8, 'u16.yml'))[0]?.message).toMatch(/UTF-16/);
  });

  it('a UTF-8 BOM is dropped; invalid UTF-8 is located', () => {
    const bom = decodeManifest(Buffer.from(`\ufeff${text}`), 'bom.yml');
    expect(bom).toEqual({ ok: true, text });
    const bad = decodeManifest(Buffer.concat([Buffer.from('init:\n  - é'), Buffer.from([0xc3, 0x28])]), 'bad.yml');
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors.map(formatError)).toEqual(['bad.yml:2:6: the file is not UTF-8 text (byte 0xc3)']);
  });

  it('raw control characters in the text are located errors', () => {
    expect(lines(parseOsManifest('init: [a]\nonboot: [] \u001b[2J\n', 'm.yml'))).toEqual([
      'm.yml:2:12: control character U+001B: YAML allows it only as an escape in a double-quoted string',
    ]);
  });
});

describe('messages never carry terminal controls', () => {
  it('escapes controls, bidi overrides and line breaks from values', () => {
    const r = parseOsManifest('services:\n  - name: "a\\e]0;pwned\\a\\e[2J\\u202e\\nb"\n    image: alpine\n', 'm.yml');
    const [line] = lines(r);
    expect(line).toBe(
      "m.yml:2:11: services.0.name: name 'a\\u001b]0;pwned\\u0007\\u001b[2J\\u202e\\nb' must be letters and digits, separated by single '.', '_' or '-'",
    );
  });

  it('escapeControl leaves ordinary text and, when asked, newlines alone', () => {
    expect(escapeControl('größe\tok: 日本')).toBe('größe\tok: 日本');
    expect(escapeControl('a\nb\u0085\u2066')).toBe('a\\nb\\u0085\\u2066');
    expect(escapeControl('a\nb\r', { keepNewlines: true })).toBe('a\nb\\u000d');
  });
});

describe('deep nesting', () => {
  it.each([
    ['flow lists', `a: ${'['.repeat(5000)}${']'.repeat(5000)}\n`],
    ['flow mappings', `a: ${'{b: '.repeat(3000)}1${'}'.repeat(3000)}\n`],
    ['block lists', `a:\n${'- '.repeat(3000)}x\n`],
    ['block mappings', Array.from({ length: 300 }, (_, i) => `${' '.repeat(i)}k:`).join('\n')],
  ])('%s: a located error saying how deep is allowed', (_name, text) => {
    const errs = errorsOf(parseOsManifest(text, 'deep.yml'));
    expect(errs).toHaveLength(1);
    expect(errs[0]?.message).toBe('nested more than 100 levels deep: Stele reads manifests up to that depth');
    expect(errs[0]?.line).toBeGreaterThanOrEqual(1);
  });

  it('100 levels are fine', () => {
    const r = parseOsManifest(`x-deep: ${'['.repeat(99)}${']'.repeat(99)}\n`, 'm.yml');
    expect(errorsOf(r).map((e) => e.path)).toEqual(['x-deep']); // unknown key, nothing else
  });
});

describe('file and device modes', () => {
  it('an unquoted 0999 is not a valid octal mode', () => {
    const r = parseOsManifest('files:\n  - path: etc/x\n    contents: a\n    mode: 0999\n', 'm.yml');
    expect(lines(r)).toEqual(['m.yml:4:11: files.0.mode: mode \'0999\' is not a valid octal mode (e.g. "0644")']);
  });

  it('an unquoted 0644 must be quoted (YAML reads it as the number 644)', () => {
    const r = parseOsManifest(
      'services:\n  - name: a\n    image: alpine\n    devices:\n      - {path: /dev/x, mode: 0644}\n',
      'm.yml',
    );
    expect(lines(r)).toEqual([
      'm.yml:5:30: services.0.devices.0.mode: write the mode in quotes ("0644"): unquoted, YAML reads 0644 as the number 644',
    ]);
  });
});

describe('readManifestFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stele-manifest-read-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file, and says why it cannot', async () => {
    writeFileSync(join(dir, 'ok.yml'), 'init: [a]\n');
    expect(await readManifestFile(join(dir, 'ok.yml'), 'ok.yml')).toEqual({ ok: true, text: 'init: [a]\n' });
    const missing = await readManifestFile(join(dir, 'nope.yml'), 'nope.yml');
    expect(missing.ok ? [] : missing.errors.map(formatError)).toEqual(['nope.yml: cannot read: no such file']);
    const directory = await readManifestFile(dir, 'dir');
    expect(directory.ok ? [] : directory.errors.map(formatError)).toEqual(['dir: cannot read: is a directory']);
  });
});
