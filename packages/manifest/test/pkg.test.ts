import { describe, expect, it } from 'vitest';
import { formatError, parseBuildYml } from '../src/index.ts';

function errorsOf(text: string): string[] {
  const r = parseBuildYml(text, 'build.yml');
  return r.ok ? [] : r.errors.map(formatError);
}

describe('build.yml', () => {
  it('reads it the way Go reads typed structs: empty values unset, scalars in string fields as written', () => {
    const r = parseBuildYml(
      'image: getty\narches:\nconfig:\n  devices:\n    - path: /dev/console\n      type: c\n      major: 5\n      minor: 1\n      mode: 0666\n',
      'build.yml',
    );
    expect(r.ok ? [] : r.errors.map(formatError)).toEqual([]);
    if (r.ok) {
      expect(r.value.arches).toBeUndefined();
      expect(r.value.config?.devices?.[0]?.mode).toBe('0666');
    }
  });

  it('image is required, and org/image must make a repository name', () => {
    expect(errorsOf('org: foo\n')).toEqual(["build.yml:1:1: image: missing required key 'image'"]);
    expect(errorsOf('image:\n')).toEqual(["build.yml:1:1: image: missing required key 'image'"]);
    expect(errorsOf('image: Getty\n')).toEqual([
      "build.yml:1:8: image: 'linuxkit/Getty' is not a valid repository name: repository name in 'linuxkit/Getty' must be lowercase ('Getty')",
    ]);
    expect(errorsOf('image: getty\norg: My Org\n')[0]).toMatch(
      /^build\.yml:2:6: org: 'My Org\/getty' is not a valid repository name/,
    );
  });

  it('checks arches, config and buildArgs', () => {
    expect(
      errorsOf('image: x\narches: [amd64, x86]\nbuildArgs: [A]\nconfig:\n  capabilities: [CAP_NOPE]\n  name: x\n'),
    ).toEqual([
      'build.yml:2:17: arches.1: must be one of "386", "amd64", "arm64", "riscv64", "s390x", "ppc64le", "arm"; got a string ("x86")',
      "build.yml:3:13: buildArgs.0: build arg 'A' must be KEY=VALUE",
      "build.yml:5:18: config.capabilities.0: unknown capability 'CAP_NOPE'",
      "build.yml:6:3: config.name: unknown key 'name'",
    ]);
  });

  it('depends paths stay inside the package', () => {
    expect(errorsOf('image: x\ndepends:\n  docker-images:\n    target-dir: ../out\n')).toEqual([
      "build.yml:4:17: depends.docker-images.target-dir: '../out' must be a path inside the package directory",
    ]);
  });
});

describe('detectKind', () => {
  it('goes by file name first', async () => {
    const { detectKind } = await import('../src/index.ts');
    expect(detectKind('pkg/foo/build.yml', 'kernel: {}\n')).toBe('pkg');
    expect(detectKind('x/build.yaml', '')).toBe('pkg');
    expect(detectKind('fleets/a/prod/fleet.yml', 'image: x\n')).toBe('fleet');
    expect(detectKind('fleets/a/prod.fleet.yaml', '')).toBe('fleet');
  });

  it('then by top-level keys, defaulting to an OS manifest', async () => {
    const { detectKind } = await import('../src/index.ts');
    expect(detectKind('build-file.yml', 'buildArgs:\n- A=1\norg: linuxkit\nimage: x\n')).toBe('pkg');
    expect(detectKind('x.yml', 'image: x\n')).toBe('pkg');
    expect(detectKind('prod.yml', 'name: a\nimage: os.yml\nprovider: {type: qemu}\n')).toBe('fleet');
    expect(detectKind('linuxkit.yml', 'kernel:\n  image: k\ninit: []\n')).toBe('os');
    expect(detectKind('anything.yml', '')).toBe('os');
    expect(detectKind('weird.yml', '\t: [broken\n')).toBe('os');
  });
});

describe('large integers', () => {
  it('say they are too large rather than not integers', async () => {
    const { parseOsManifest } = await import('../src/index.ts');
    const r = parseOsManifest(
      'services:\n  - {name: a, image: b, resources: {memory: {limit: 9223372036854775807}}}\n',
      'm.yml',
    );
    expect(r.ok ? [] : r.errors.map((e) => e.message)).toEqual([
      'integer 9223372036854776000 is too large to be exact (the limit is 2^53-1)',
    ]);
  });
});
