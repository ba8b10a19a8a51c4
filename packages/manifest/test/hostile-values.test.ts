/**
 * Values a hostile user writes (issue 12): file paths that climb out of the image, secrets in
 * URLs and under secret-looking keys, binds of undeclared or read-only volumes. Each is an error
 * at its line, as validation finds it, before any build.
 */
import { describe, expect, it } from 'vitest';
import { formatError, type ManifestError, type ParseResult, parseFleet, parseOsManifest } from '../src/index.ts';

function errorsOf(r: ParseResult<unknown>): ManifestError[] {
  return r.ok ? [] : r.errors;
}

const lines = (r: ParseResult<unknown>) => errorsOf(r).map(formatError);

const fileEntry = (path: string) => `files:\n  - path: ${path}\n    contents: x\n`;

describe('files[].path stays inside the image', () => {
  it.each([
    ['../../etc/x', '../../etc/x'],
    ['etc/../../up', 'etc/../../up'],
    ['..', '..'],
    ['"bin/sh\\0x"', 'bin/sh\u0000x'],
    ['"etc/a\\nb"', 'etc/a\nb'],
    ['//etc/x', '//etc/x'],
  ])('%s is refused at the path', (yaml) => {
    const errs = errorsOf(parseOsManifest(fileEntry(yaml), 'm.yml'));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatchObject({ line: 2, col: 11, path: 'files.0.path' });
    expect(errs[0]?.message).toMatch(/path/);
  });

  it('names the reason', () => {
    const [up] = errorsOf(parseOsManifest(fileEntry('etc/../../up'), 'm.yml'));
    expect(up?.message).toMatch(/'\.\.'/);
    const [nul] = errorsOf(parseOsManifest(fileEntry('"bin/sh\\0x"'), 'm.yml'));
    expect(nul?.message).toMatch(/control character/);
    const [abs] = errorsOf(parseOsManifest(fileEntry('//etc/x'), 'm.yml'));
    expect(abs?.message).toMatch(/absolute/);
  });

  it('one leading slash is fine (LinuxKit drops it), as are . and names with dots', () => {
    for (const p of ['/etc/x', 'etc/x', './etc/x', 'etc/..x/y', 'etc/x..', '/dev/console']) {
      expect(lines(parseOsManifest(fileEntry(p), 'm.yml')), p).toEqual([]);
    }
  });
});

describe('inline secrets in fleet.yml', () => {
  const fleet = (extra: string) => `name: lab\nimage: os.yml\nhosts: 1\nprovider: {type: qemu}\n${extra}`;
  const secretErrors = (text: string) =>
    errorsOf(parseFleet(text, 'fleet.yml')).filter((e) => /inline secret|password in a URL/.test(e.message));

  it('a password in a URL is an inline secret, and is not echoed', () => {
    const vsphere = parseFleet(
      'name: lab\nimage: os.yml\nhosts: 1\nprovider:\n  type: vsphere\n  url: https://admin:pw1@vc.example.com/sdk\n' +
        '  username: u\n  password: {env: P}\n  datacenter: d\n  datastore: s\n  network: n\n',
      'fleet.yml',
    );
    expect(errorsOf(vsphere).map((e) => [e.line, e.path])).toEqual([[6, 'provider.url']]);
    expect(JSON.stringify(errorsOf(vsphere))).not.toContain('pw1');
    const swarm = secretErrors(fleet('orchestrator:\n  type: swarm\n  endpoint: tcp://admin:pw2@manager:2376\n'));
    expect(swarm.map((e) => [e.line, e.path])).toEqual([[7, 'orchestrator.endpoint']]);
    expect(JSON.stringify(swarm)).not.toContain('pw2');
  });

  it('a user name alone in a URL is fine', () => {
    expect(secretErrors(fleet('orchestrator:\n  type: swarm\n  endpoint: ssh://admin@manager\n'))).toEqual([]);
  });

  it('an API key under labels is an inline secret', () => {
    const errs = secretErrors(
      fleet('orchestrator:\n  type: swarm\n  endpoint: tcp://m:2376\n  labels:\n    apiKey: abc123\n    api-key: x\n'),
    );
    expect(errs.map((e) => e.path)).toEqual(['orchestrator.labels.apiKey', 'orchestrator.labels.api-key']);
  });
});

describe('binds of volumes', () => {
  const os = (volumes: string, binds: string) =>
    `volumes:\n${volumes}services:\n  - name: a\n    image: alpine\n${binds}`;

  it('a bind source that is neither absolute nor a declared volume is an error at the bind', () => {
    const r = parseOsManifest(os('  - name: data\n', '    binds:\n      - /etc:/etc\n      - dta:/data\n'), 'm.yml');
    expect(lines(r)).toEqual([
      "m.yml:8:9: services.0.binds.1: bind source 'dta' is neither an absolute path nor a volume declared under volumes: (did you mean 'data'?)",
    ]);
  });

  it('a read-only volume must be bound with :ro', () => {
    const vols = '  - name: data\n    readonly: true\n';
    const rw = parseOsManifest(os(vols, '    binds.add:\n      - data:/data\n'), 'm.yml');
    expect(lines(rw)).toEqual([
      'm.yml:8:9: services.0["binds.add"].0: volume \'data\' is read-only: bind it with the option ro alone (data:/data:ro)',
    ]);
    expect(lines(parseOsManifest(os(vols, '    binds:\n      - data:/data:ro\n'), 'm.yml'))).toEqual([]);
    expect(lines(parseOsManifest(os(vols, '    binds:\n      - data:/data:rw\n'), 'm.yml'))).toHaveLength(1);
  });

  it('bind mounts follow the same rule (the first of ro/rw decides)', () => {
    const vols = '  - name: data\n    readonly: true\n';
    const mount = (opts: string) =>
      `    mounts:\n      - {type: bind, source: data, destination: /d, options: [${opts}]}\n`;
    expect(lines(parseOsManifest(os(vols, mount('rbind, ro')), 'm.yml'))).toEqual([]);
    expect(lines(parseOsManifest(os(vols, mount('rw, ro')), 'm.yml'))).toEqual([
      "m.yml:8:9: services.0.mounts.0: volume 'data' is read-only: mount it with the option ro",
    ]);
    const undeclared = parseOsManifest(
      os('  - name: data\n', mount('ro').replace('source: data', 'source: nope')),
      'm.yml',
    );
    expect(errorsOf(undeclared).map((e) => [e.path, e.message])).toEqual([
      [
        'services.0.mounts.0',
        "bind mount source 'nope' is neither an absolute path nor a volume declared under volumes:",
      ],
    ]);
  });
});
