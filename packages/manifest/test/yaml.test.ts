import { describe, expect, it } from 'vitest';
import { formatError, formatPath, loadYaml, parseOsManifest, positionOf } from '../src/index.ts';

function firstError(text: string) {
  const r = parseOsManifest(text, 'm.yml');
  if (r.ok) throw new Error('expected errors');
  return r.errors[0];
}

describe('reading YAML', () => {
  it('an empty file and a file of comments are each "empty"', () => {
    expect(firstError('')).toMatchObject({ line: 1, col: 1, message: 'file is empty: no YAML content' });
    expect(firstError('# only a comment\n\n')).toMatchObject({ message: 'file is empty: no YAML content' });
  });

  it('several documents are an error at the second ---', () => {
    const e = firstError('init: [a]\n---\ninit: [b]\n---\ninit: [c]\n');
    expect(e).toMatchObject({ line: 2, col: 1 });
    expect(e?.message).toMatch(/3 YAML documents; one is allowed \(LinuxKit would silently use only the first\)/);
  });

  it('a leading --- and a trailing empty document are fine', () => {
    expect(parseOsManifest('---\ninit: [alpine]\n', 'm.yml').ok).toBe(true);
    expect(parseOsManifest('init: [alpine]\n---\n', 'm.yml').ok).toBe(true);
  });

  it('tabs in indentation get their own message', () => {
    const e = firstError('services:\n\t- name: a\n');
    expect(e).toMatchObject({
      line: 2,
      col: 1,
      message: 'tab character in indentation: YAML indents with spaces only',
    });
  });

  it('duplicate keys name the key and the first line', () => {
    const r = parseOsManifest('init: [a]\nonboot: []\ninit: [b]\n', 'm.yml');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map(formatError)).toEqual(["m.yml:3:1: duplicate key 'init' (first defined at line 1)"]);
  });

  it('duplicate keys are found at any depth', () => {
    const e = firstError('services:\n  - name: a\n    image: x\n    name: b\n');
    expect(e).toMatchObject({ line: 4, col: 5, message: "duplicate key 'name' (first defined at line 2)" });
  });

  it('broken YAML reports the place', () => {
    const e = firstError('init: [a, b\nonboot: []\n');
    expect(e?.line).toBeGreaterThanOrEqual(1);
    expect(e?.message).not.toMatch(/at line \d+, column/); // no repeated position in the text
    expect(e?.message.length).toBeGreaterThan(5);
  });

  it('unknown aliases and complex keys are errors, not crashes', () => {
    expect(firstError('init: *nope\n')).toMatchObject({
      line: 1,
      col: 7,
      message: expect.stringMatching(/unknown alias \*nope/),
    });
    expect(firstError('? [a, b]\n: 1\n')).toMatchObject({
      line: 1,
      col: 3,
      message: expect.stringMatching(/plain scalars/),
    });
  });

  it('alias bombs stop with an error', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
    ].join('\n');
    expect(firstError(bomb)?.message).toMatch(/cannot read YAML|alias/i);
  });

  it('a top level that is not a mapping is an error', () => {
    expect(firstError('- a\n- b\n')?.message).toMatch(/must be a mapping/);
    expect(firstError('just text\n')?.message).toMatch(/must be a mapping/);
  });

  it('merge keys are followed', () => {
    const text = 'x-base: &base\n  image: alpine\nservices:\n  - <<: *base\n    name: a\n';
    // x-base is unknown to LinuxKit; the merged service itself is fine.
    const r = parseOsManifest(text, 'm.yml');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.path)).toEqual(['x-base']);
  });
});

describe('positions', () => {
  const text =
    'kernel:\n  image: linuxkit/kernel:6.6\nservices:\n  - name: a\n    image: alpine\n    binds.add:\n      - "/a"\n';
  const loaded = loadYaml(text, 'm.yml');
  if (!loaded.ok) throw new Error('fixture must load');

  it('maps a path to its value, or its key', () => {
    expect(positionOf(loaded.loaded, ['kernel', 'image'])).toEqual({ line: 2, col: 10 });
    expect(positionOf(loaded.loaded, ['kernel', 'image'], 'key')).toEqual({ line: 2, col: 3 });
    expect(positionOf(loaded.loaded, ['services', 0, 'binds.add', 0])).toEqual({ line: 7, col: 9 });
  });

  it('a missing key points at the deepest mapping that exists', () => {
    expect(positionOf(loaded.loaded, ['services', 0, 'nope'])).toEqual({ line: 4, col: 5 });
    expect(positionOf(loaded.loaded, ['services', 5, 'name'])).toEqual({ line: 4, col: 3 });
  });

  it('errors of a file come out in source order with dotted paths', () => {
    const r = parseOsManifest(text, 'm.yml');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors.map(formatError)).toEqual([
        `m.yml:7:9: services.0["binds.add"].0: bind '/a' is missing ':' (write SOURCE:DESTINATION[:OPTIONS])`,
      ]);
    }
  });

  it('formats paths with odd keys in brackets', () => {
    expect(formatPath(['services', 1, 'sysctl', 'net.ipv4.ip_forward'])).toBe(
      'services.1.sysctl["net.ipv4.ip_forward"]',
    );
    expect(formatPath([])).toBe('');
  });

  it('a key with no value points at the key', () => {
    const r = parseOsManifest('kernel:\n  image:\n', 'm.yml');
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.errors.map(formatError)).toEqual(['m.yml:2:3: kernel.image: expected a string, got an empty value']);
  });
});

describe('keys that are names of Object.prototype members', () => {
  it('are plain unknown keys, never crashes', async () => {
    const { parseBuildYml, parseFleet } = await import('../src/index.ts');
    for (const key of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      const os = parseOsManifest(`${key}: {}\nservices:\n  - {name: a, image: alpine, ${key}: 1}\n`, 'm.yml');
      expect(os.ok ? [] : os.errors.map((e) => e.path)).toEqual([key, `services.0.${key}`]);
      const pkg = parseBuildYml(`image: x\n${key}: {}\nconfig: {${key}: 1}\n`, 'build.yml');
      expect(pkg.ok ? [] : pkg.errors.map((e) => e.path)).toEqual([key, `config.${key}`]);
      const fleet = parseFleet(`name: a\nimage: o.yml\nhosts: 1\nprovider: {type: qemu, ${key}: 1}\n`, 'f.yml');
      expect(fleet.ok ? [] : fleet.errors.map((e) => e.path)).toEqual([`provider.${key}`]);
    }
  });

  it('digest algorithms and mount types named like them are rejected', async () => {
    const { checkDigest, checkMount } = await import('../src/index.ts');
    expect(checkDigest('constructor:abc')).toMatch(/unsupported digest algorithm/);
    expect(checkMount({ type: 'toString' })).toMatch(/missing 'destination'/);
  });
});
