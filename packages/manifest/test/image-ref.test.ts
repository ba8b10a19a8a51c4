import { describe, expect, it } from 'vitest';
import { checkDigest, familiarImageRef, formatImageRef, parseImageRef, withDefaultTag } from '../src/index.ts';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseImageRef', () => {
  it.each([
    ['alpine', { registry: 'docker.io', repository: 'library/alpine' }],
    ['alpine:3.19', { registry: 'docker.io', repository: 'library/alpine', tag: '3.19' }],
    ['linuxkit/init:abc', { registry: 'docker.io', repository: 'linuxkit/init', tag: 'abc' }],
    ['docker.io/library/redis', { registry: 'docker.io', repository: 'library/redis' }],
    ['index.docker.io/foo/bar', { registry: 'docker.io', repository: 'foo/bar' }],
    ['docker.io/redis', { registry: 'docker.io', repository: 'library/redis' }],
    ['localhost/foo', { registry: 'localhost', repository: 'foo' }],
    ['localhost:5000/a/b/c:v1', { registry: 'localhost:5000', repository: 'a/b/c', tag: 'v1' }],
    [`ghcr.io/org/img@${D}`, { registry: 'ghcr.io', repository: 'org/img', digest: D }],
    [`quay.io/x/y:t@${D}`, { registry: 'quay.io', repository: 'x/y', tag: 't', digest: D }],
    ['[::1]:5000/foo', { registry: '[::1]:5000', repository: 'foo' }],
    ['a__b/c-d--e.f_g', { registry: 'docker.io', repository: 'a__b/c-d--e.f_g' }],
  ])('%s', (input, want) => {
    const r = parseImageRef(input);
    expect(r).toEqual({ ok: true, ref: want });
  });

  it.each([
    ['', /empty/],
    ['UPPER/Case:tag', /must be lowercase/],
    ['alpine:', /invalid tag ''/],
    ['alpine:-x', /invalid tag/],
    ['alpine@sha256:invalid', /lowercase hexadecimal/],
    ['alpine@sha256:abcd', /64 hex digits, got 4/],
    [`alpine@md5:${'a'.repeat(32)}`, /unsupported digest algorithm 'md5'/],
    ['foo//bar', /empty path component/],
    ['foo/-bar', /invalid repository name component '-bar'/],
    ['a b', /whitespace/],
    ['bad_host.com:port/x', /invalid registry port/],
    [':tag', /no repository name/],
    [`${'a'.repeat(256)}`, /longer than 255/],
  ])('rejects %s', (input, message) => {
    const r = parseImageRef(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(message);
  });

  it('formats canonical and familiar forms', () => {
    const r = parseImageRef('alpine:3.19');
    if (!r.ok) throw new Error(r.message);
    expect(formatImageRef(r.ref)).toBe('docker.io/library/alpine:3.19');
    expect(familiarImageRef(r.ref)).toBe('alpine:3.19');
    const q = parseImageRef(`quay.io/x/y@${D}`);
    if (!q.ok) throw new Error(q.message);
    expect(familiarImageRef(q.ref)).toBe(`quay.io/x/y@${D}`);
  });

  it('round-trips: the canonical form parses to the same reference', () => {
    for (const s of ['alpine', 'linuxkit/init:abc', `ghcr.io/o/i:t@${D}`, 'localhost:5000/x']) {
      const a = parseImageRef(s);
      if (!a.ok) throw new Error(a.message);
      expect(parseImageRef(formatImageRef(a.ref))).toEqual(a);
    }
  });

  it('fills in latest only where neither tag nor digest is given', () => {
    const ref = (s: string) => {
      const r = parseImageRef(s);
      if (!r.ok) throw new Error(r.message);
      return withDefaultTag(r.ref);
    };
    expect(ref('alpine').tag).toBe('latest');
    expect(ref('alpine:3').tag).toBe('3');
    expect(ref(`alpine@${D}`)).toEqual({ registry: 'docker.io', repository: 'library/alpine', digest: D });
  });

  it('checks digests by algorithm', () => {
    expect(checkDigest(D)).toBeUndefined();
    expect(checkDigest(`sha512:${'0'.repeat(128)}`)).toBeUndefined();
    expect(checkDigest('sha256')).toMatch(/ALGORITHM:HEX/);
  });
});
