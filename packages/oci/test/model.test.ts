import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatImageRef } from '@stele/manifest';
import { describe, expect, it } from 'vitest';
import {
  buildIndex,
  DigestError,
  isLoopbackHost,
  lookupCredentials,
  MediaType,
  parseChallenges,
  parseDigest,
  parseManifest,
  parseReference,
  selectPlatform,
  sha256,
  verifyBytes,
} from '../src/index.ts';

describe('digest', () => {
  it('parses sha256/sha512 and refuses anything else', () => {
    expect(parseDigest(`sha256:${'a'.repeat(64)}`)).toEqual({ algorithm: 'sha256', hex: 'a'.repeat(64) });
    expect(() => parseDigest(`md5:${'a'.repeat(32)}`)).toThrow(/unsupported digest algorithm/);
    expect(() => parseDigest(`sha256:${'A'.repeat(64)}`)).toThrow(/malformed/);
    expect(() => verifyBytes(Buffer.from('x'), sha256('y'))).toThrow(DigestError);
    expect(() => verifyBytes(Buffer.from('x'), sha256('x'), 2)).toThrow(/size mismatch/);
  });
});

describe('references', () => {
  it('normalises like Docker', () => {
    expect(parseReference('alpine')).toEqual({ registry: 'docker.io', repository: 'library/alpine', tag: 'latest' });
    expect(parseReference('127.0.0.1:5000/a/b:1')).toEqual({ registry: '127.0.0.1:5000', repository: 'a/b', tag: '1' });
    expect(parseReference('localhost/x')).toMatchObject({ registry: 'localhost', repository: 'x' });
    const d = `sha256:${'c'.repeat(64)}`;
    expect(parseReference(`r.io/x:t@${d}`)).toEqual({ registry: 'r.io', repository: 'x', tag: 't', digest: d });
    expect(formatImageRef(parseReference(`r.io/x@${d}`))).toBe(`r.io/x@${d}`);
    expect(() => parseReference('r.io/UPPER:1')).toThrow(/must be lowercase \('UPPER'\)/);
    expect(() => parseReference('r.io/x@sha256:abc')).toThrow(/invalid digest/);
  });

  // Where this parser and @stele/manifest's used to disagree, Docker's reference grammar decides.
  it('follows Docker where the two parsers differed', () => {
    expect(() => parseReference(' alpine')).toThrow(/whitespace/);
    expect(() => parseReference('bad_host.com:port/x')).toThrow(/invalid registry port/);
    expect(() => parseReference('registry.example.com:5000:6000/x')).toThrow(/invalid registry port/);
    expect(() => parseReference(`r.io/${'a'.repeat(256)}`)).toThrow(/longer than 255/);
    expect(parseReference('Registry/x')).toEqual({ registry: 'Registry', repository: 'x', tag: 'latest' });
    const sha384 = `sha384:${'e'.repeat(96)}`;
    expect(parseReference(`r.io/x@${sha384}`)).toEqual({ registry: 'r.io', repository: 'x', digest: sha384 });
  });

  it('knows loopback hosts', () => {
    expect(isLoopbackHost('127.0.0.1:5000')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('[::1]:5000')).toBe(true);
    expect(isLoopbackHost('10.0.0.1:5000')).toBe(false);
    expect(isLoopbackHost('127.example.com')).toBe(false);
  });
});

describe('manifests and platforms', () => {
  const d = (n: string) => ({ mediaType: MediaType.OciManifest, digest: sha256(n), size: 1 });
  it('builds an index and selects a platform from it', () => {
    const { bytes, descriptor } = buildIndex([
      { descriptor: d('a'), platform: { os: 'linux', architecture: 'amd64' } },
      { descriptor: d('b'), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ]);
    expect(descriptor.digest).toBe(sha256(bytes));
    const m = parseManifest(bytes);
    if (m.kind !== 'index') throw new Error('want index');
    expect(selectPlatform(m.index, { os: 'linux', architecture: 'arm64' }).digest).toBe(sha256('b'));
    expect(selectPlatform(m.index, { os: 'linux', architecture: 'arm64', variant: 'v8' }).digest).toBe(sha256('b'));
    expect(() => selectPlatform(m.index, { os: 'linux', architecture: 's390x' })).toThrow(
      /no image for linux\/s390x in the index \(it has: linux\/amd64, linux\/arm64\/v8\)/,
    );
  });

  it('parses Docker schema-2 types and rejects broken documents with the field', () => {
    const docker = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.DockerManifest,
      config: { mediaType: MediaType.DockerConfig, digest: sha256('c'), size: 1 },
      layers: [],
    });
    expect(parseManifest(docker).kind).toBe('manifest');
    expect(
      parseManifest(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifestList, manifests: [] })).kind,
    ).toBe('index');
    expect(() => parseManifest('{"schemaVersion":1}')).toThrow(/schemaVersion 1/);
    expect(() =>
      parseManifest(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', digest: sha256('c') }, layers: [] })),
    ).toThrow(/config.size/);
  });
});

describe('auth', () => {
  it('parses WWW-Authenticate challenges', () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a/b:pull,push"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.example/token', service: 'reg.example', scope: 'repository:a/b:pull,push' },
      },
    ]);
    expect(parseChallenges('Basic realm="stele test"')).toEqual([{ scheme: 'basic', params: { realm: 'stele test' } }]);
    expect(parseChallenges('Basic realm="a\\"b", Bearer realm=x')).toEqual([
      { scheme: 'basic', params: { realm: 'a"b' } },
      { scheme: 'bearer', params: { realm: 'x' } },
    ]);
  });

  it('finds credentials in env, docker config auths and credential helpers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stele-auth-'));
    try {
      const env = { DOCKER_CONFIG: dir };
      expect(await lookupCredentials('r.io', { env })).toBeUndefined();
      writeFileSync(
        join(dir, 'config.json'),
        JSON.stringify({
          auths: {
            'https://r.io': { auth: Buffer.from('me:s3cr:et').toString('base64') },
            'tok.io': { identitytoken: 'rt' },
          },
          credHelpers: { 'helped.io': 'fake' },
          credsStore: 'store',
        }),
      );
      expect(await lookupCredentials('r.io', { env })).toEqual({ username: 'me', password: 's3cr:et' });
      expect(await lookupCredentials('tok.io', { env })).toEqual({ identityToken: 'rt' });
      const calls: string[] = [];
      const runHelper = async (helper: string, host: string) => {
        calls.push(`${helper} ${host}`);
        return helper === 'fake' ? JSON.stringify({ Username: 'h', Secret: 'hs' }) : '';
      };
      expect(await lookupCredentials('helped.io', { env, runHelper })).toEqual({ username: 'h', password: 'hs' });
      expect(await lookupCredentials('other.io', { env, runHelper })).toBeUndefined();
      expect(calls).toEqual(['fake helped.io', 'store other.io']);
      const envCreds = {
        ...env,
        STELE_REGISTRY_USERNAME: 'e',
        STELE_REGISTRY_PASSWORD: 'p',
        STELE_REGISTRY_HOST: 'r.io',
      };
      expect(await lookupCredentials('r.io', { env: envCreds })).toEqual({ username: 'e', password: 'p' });
      expect(await lookupCredentials('tok.io', { env: envCreds })).toEqual({ identityToken: 'rt' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
