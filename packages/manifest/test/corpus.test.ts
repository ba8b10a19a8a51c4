import { describe, expect, it } from 'vitest';
import { detectKind, formatError, parseBuildYml, parseOsManifest } from '../src/index.ts';
import { classes, corpusPresent, findNamed, read } from './corpus.ts';

const show = (r: { ok: boolean; errors?: Parameters<typeof formatError>[0][] }) =>
  r.ok ? 'valid' : (r.errors ?? []).map(formatError).join('\n');

describe.runIf(corpusPresent)('LinuxKit corpus', () => {
  it('accepts the 177 OS manifests, except the one LinuxKit tests for a read-only volume bound read-write; reads each as kind os', () => {
    const files = classes().os_manifest;
    expect(files).toHaveLength(177);
    // LinuxKit's own test expects its build to fail; Stele says so at validation.
    const negative = 'test/cases/000_build/070_volumes/002_rw_on_ro/test.yml';
    const failures = files.map((f) => [f, parseOsManifest(read(f), f)] as const).filter(([, r]) => !r.ok);
    expect(failures.map(([, r]) => show(r))).toEqual([
      `${negative}:12:9: onboot.0.binds.1: volume 'vola' is read-only: bind it with the option ro alone (vola:/vola:ro)`,
    ]);
    expect(files.filter((f) => detectKind(f, read(f)) !== 'os')).toEqual([]);
  });

  it('accepts all 68 build.yml files of pkg/, tools/ and test/pkg/', () => {
    const files = findNamed('pkg', 'build.yml');
    expect(files).toHaveLength(68);
    const failures = files.map((f) => [f, parseBuildYml(read(f), f)] as const).filter(([, r]) => !r.ok);
    expect(failures.map(([, r]) => show(r))).toEqual([]);
  });

  it('accepts the build.yml test cases, except the one LinuxKit tests for an unknown field', () => {
    const files = classes().pkg_build_yml;
    const negative = 'test/cases/000_build/090_validate_build_yaml/build.yml';
    for (const f of files) {
      expect(detectKind(f, read(f)), f).toBe('pkg');
      const r = parseBuildYml(read(f), f);
      if (f === negative) {
        expect(r.ok).toBe(false);
        expect(show(r)).toMatch(/:7:1: unknownField: unknown key 'unknownField'/);
      } else {
        expect(show(r), f).toBe('valid');
      }
    }
  });

  it('rejects the manifest with an unknown top-level field', () => {
    const [[file, keys]] = classes().os_manifest_unknown_keys as [[string, string[]]];
    const r = parseOsManifest(read(file), file);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.path)).toEqual(keys);
  });

  it('rejects the broken examples/static-ip.yml with the line of the stray comment', () => {
    const [file] = classes().parse_error as [string];
    expect(file).toBe('examples/static-ip.yml');
    const r = parseOsManifest(read(file), file);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors[0]).toMatchObject({ file, line: 27, col: 1 });
      expect(r.errors[0]?.message).toMatch(/comment at column 1 ends the block scalar/);
    }
  });
});

/** Verdict per negative case: where the first error is and what it says, or 'valid'. */
const OS_CASES: Record<string, 'valid' | [line: number, col: number, path: string, message: RegExp]> = {
  '01-unknown-top-key.yml': [1, 1, 'unknownField', /unknown key 'unknownField'/],
  '02-missing-image-name.yml': [2, 5, 'onboot.0.name', /missing required key 'name'/],
  '03-duplicate-service.yml': [3, 12, 'services.1.name', /duplicate service name 'a'/],
  '04-bad-volume-name.yml': [2, 11, 'volumes.0.name', /invalid volume name 'Bad.Name'/],
  '05-duplicate-volume.yml': [3, 12, 'volumes.1.name', /duplicate volume name 'v1'/],
  '06-wrong-type.yml': [4, 15, 'onboot.0.readonly', /expected true or false, got a string \("yes"\)/],
  '07-unknown-image-key.yml': [4, 5, 'services.0.privileged', /unknown key 'privileged'/],
  '08-bad-volume-format.yml': [2, 44, 'volumes.0.format', /must be one of "oci", "filesystem"/],
  '09-bad-reference.yml': [3, 12, 'onboot.0.image', /must be lowercase/],
  // LinuxKit ignores `trust`; Stele reads it, and this one is well-formed.
  '10-trust-accepted.yml': 'valid',
  '11-kernel-unknown-key.yml': [3, 3, 'kernel.modules', /unknown key 'modules'/],
  '12-uid-bool.yml': [4, 10, 'services.0.uid', /expected a name or a numeric id, got a boolean/],
  // onboot steps run one after another: equal names are allowed (as in LinuxKit).
  '13-dup-onboot-allowed.yml': 'valid',
  '14-file-no-contents.yml': [2, 5, 'files.0', /file has no content/],
  '15-multidoc.yml': [2, 1, '', /2 YAML documents/],
  '16-empty.yml': [1, 1, '', /file is empty/],
};

const PKG_CASES: Record<string, 'valid' | [line: number, col: number, path: string, message: RegExp]> = {
  '01-unknown-field': [2, 1, 'unknownField', /unknown key 'unknownField'/],
  '02-missing-image': [1, 1, 'image', /missing required key 'image'/],
  '03-depends-no-digest': [6, 9, 'depends.docker-images.list.0', /lacks a digest/],
  '04-depends-bad-digest': [6, 9, 'depends.docker-images.list.0', /invalid digest 'sha256:invalid'/],
  '05-depends-both-targets': [5, 5, 'depends.docker-images.target-dir', /mutually exclusive/],
  '06-depends-both-lists': [5, 5, 'depends.docker-images.list', /mutually exclusive/],
  '07-bad-extra-source': [3, 5, 'extra-sources.0', /must be SOURCE:DESTINATION/],
  '08-bad-tag-template': [2, 6, 'tag', /unclosed action/],
  '09-config-unknown-key': [3, 3, 'config.privileged', /unknown key 'privileged'/],
  '10-valid-full': 'valid',
};

describe.runIf(corpusPresent)('corpus negative cases (invalid/)', () => {
  it('covers every case in invalid/os and invalid/pkg', () => {
    const os = read('invalid/summary-os.tsv')
      .trim()
      .split('\n')
      .map((l) => l.split('\t')[1]);
    const pkg = read('invalid/summary-pkg.tsv')
      .trim()
      .split('\n')
      .map((l) => l.split('\t')[1]);
    expect(os.sort()).toEqual(Object.keys(OS_CASES).sort());
    expect(pkg.sort()).toEqual(Object.keys(PKG_CASES).sort());
  });

  for (const [name, want] of Object.entries(OS_CASES)) {
    it(`os/${name}: ${want === 'valid' ? 'accepted' : 'rejected'}`, () => {
      const file = `invalid/os/${name}`;
      const r = parseOsManifest(read(file), file);
      if (want === 'valid') {
        expect(show(r)).toBe('valid');
        return;
      }
      expect(r.ok).toBe(false);
      if (r.ok) return;
      const [line, col, path, message] = want;
      expect(r.errors[0]).toMatchObject({ file, line, col, path });
      expect(r.errors[0]?.message).toMatch(message);
    });
  }

  for (const [name, want] of Object.entries(PKG_CASES)) {
    it(`pkg/${name}: ${want === 'valid' ? 'accepted' : 'rejected'}`, () => {
      const file = `invalid/pkg/${name}/build.yml`;
      expect(detectKind(file, read(file))).toBe('pkg');
      const r = parseBuildYml(read(file), file);
      if (want === 'valid') {
        expect(show(r)).toBe('valid');
        return;
      }
      expect(r.ok).toBe(false);
      if (r.ok) return;
      const [line, col, path, message] = want;
      expect(r.errors[0]).toMatchObject({ file, line, col, path });
      expect(r.errors[0]?.message).toMatch(message);
    });
  }

  it('reports every error of a file, not just the first', () => {
    const file = 'invalid/os/06-wrong-type.yml';
    const r = parseOsManifest(read(file), file);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.path)).toEqual(['onboot.0.readonly', 'onboot.0.oomScoreAdj']);
  });
});
