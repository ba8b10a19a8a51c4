/**
 * Container image references, parsed and normalised the way docker does it
 * (the distribution reference grammar): `alpine` is `docker.io/library/alpine`,
 * `linuxkit/init:abc` is `docker.io/linuxkit/init:abc`. The one reference grammar of Stele:
 * `@stele/oci`'s `parseReference` is this parser with `latest` filled in and errors thrown.
 */

export interface ImageRef {
  /** Registry host, with port if any, e.g. `docker.io`, `localhost:5000`. */
  registry: string;
  /** Repository path inside the registry, e.g. `library/alpine`. */
  repository: string;
  tag?: string;
  /** `algorithm:hex`, e.g. `sha256:…`. */
  digest?: string;
}

export type ImageRefResult = { ok: true; ref: ImageRef } | { ok: false; message: string };

export const DEFAULT_REGISTRY = 'docker.io';
const LEGACY_REGISTRIES = new Set(['index.docker.io', 'registry-1.docker.io']);
const NAME_MAX = 255;

// One path component: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^[0-9]+$/;
const IPV6 = /^\[[0-9a-fA-F:.]+(?:%[a-zA-Z0-9]+)?\]$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const ALGORITHM = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*$/;
/** Registered digest algorithms and the hex length they require (as docker's digest package). */
const DIGEST_LENGTHS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** Checks `algorithm:hex`; returns a message or undefined when valid. */
export function checkDigest(digest: string): string | undefined {
  const colon = digest.indexOf(':');
  if (colon < 0) return `invalid digest '${digest}': expected ALGORITHM:HEX`;
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (!ALGORITHM.test(algorithm)) return `invalid digest algorithm '${algorithm}'`;
  const want = Object.hasOwn(DIGEST_LENGTHS, algorithm) ? DIGEST_LENGTHS[algorithm] : undefined;
  if (want === undefined) return `unsupported digest algorithm '${algorithm}' (use sha256, sha384 or sha512)`;
  if (!/^[a-f0-9]*$/.test(hex)) return `invalid digest '${digest}': the hex part must be lowercase hexadecimal`;
  if (hex.length !== want)
    return `invalid digest '${digest}': ${algorithm} needs ${want} hex digits, got ${hex.length}`;
  return undefined;
}

function checkDomain(domain: string): string | undefined {
  let host = domain;
  const bracket = domain.startsWith('[');
  if (bracket) {
    const end = domain.indexOf(']');
    if (end < 0) return `invalid registry host '${domain}'`;
    host = domain.slice(0, end + 1);
    if (!IPV6.test(host)) return `invalid registry host '${domain}'`;
    const rest = domain.slice(end + 1);
    if (rest !== '' && !(rest.startsWith(':') && PORT.test(rest.slice(1))))
      return `invalid registry port in '${domain}'`;
    return undefined;
  }
  const colon = domain.indexOf(':');
  if (colon >= 0) {
    host = domain.slice(0, colon);
    if (!PORT.test(domain.slice(colon + 1))) return `invalid registry port in '${domain}'`;
  }
  for (const part of host.split('.')) {
    if (!DOMAIN_COMPONENT.test(part)) return `invalid registry host '${domain}'`;
  }
  return undefined;
}

/**
 * Parses an image reference. Normalises like docker: no registry means `docker.io`, a
 * single-component name on docker.io lives under `library/`. No tag and no digest stays
 * so (callers decide whether `latest` applies).
 */
export function parseImageRef(input: string): ImageRefResult {
  const fail = (message: string): ImageRefResult => ({ ok: false, message });
  if (input === '') return fail('image reference is empty');
  if (/\s/.test(input)) return fail(`image reference '${input}' contains whitespace`);

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    const bad = checkDigest(digest);
    if (bad) return fail(bad);
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) {
      return fail(
        `invalid tag '${tag}' in '${input}': a tag is up to 128 letters, digits, '_', '.' or '-' and cannot start with '.' or '-'`,
      );
    }
  }
  if (rest === '') return fail(`image reference '${input}' has no repository name`);
  if (rest.length > NAME_MAX) return fail(`repository name in '${input}' is longer than ${NAME_MAX} characters`);

  let registry = DEFAULT_REGISTRY;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // Docker's rule: the first component is a registry if it looks like a host name.
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first) {
      registry = first;
      path = rest.slice(slash + 1);
      const bad = checkDomain(registry);
      if (bad) return fail(`${bad} in '${input}'`);
    }
  }
  if (LEGACY_REGISTRIES.has(registry)) registry = DEFAULT_REGISTRY;

  if (path === '') return fail(`image reference '${input}' has no repository name`);
  for (const component of path.split('/')) {
    if (component === '') return fail(`repository name in '${input}' has an empty path component`);
    if (!PATH_COMPONENT.test(component)) {
      if (component.toLowerCase() !== component) {
        return fail(`repository name in '${input}' must be lowercase ('${component}')`);
      }
      return fail(
        `invalid repository name component '${component}' in '${input}': use lowercase letters and digits, separated by '.', '_', '__' or '-'`,
      );
    }
  }
  if (registry === DEFAULT_REGISTRY && !path.includes('/')) path = `library/${path}`;

  const ref: ImageRef = { registry, repository: path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return { ok: true, ref };
}

/** Docker's `TagNameOnly`: a reference with neither tag nor digest gets the tag `latest`. */
export function withDefaultTag(ref: ImageRef): ImageRef {
  return ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: 'latest' } : ref;
}

/** The canonical full form, e.g. `docker.io/library/alpine:3.19@sha256:…`. */
export function formatImageRef(ref: ImageRef): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** The short form docker prints: without `docker.io/` and `library/`. */
export function familiarImageRef(ref: ImageRef): string {
  let name = `${ref.registry}/${ref.repository}`;
  if (ref.registry === DEFAULT_REGISTRY) {
    name = ref.repository.startsWith('library/') ? ref.repository.slice('library/'.length) : ref.repository;
  }
  return `${name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/**
 * LinuxKit's image templates: a value starting with `@` names no image but says how to find one.
 * The only kind is `@pkg:PATH` — the package at PATH (relative to the manifest's directory), whose
 * `org/image:tag` (`stele pkg show-tag PATH`) replaces the value at build time.
 */
export const PKG_TEMPLATE = '@pkg:';

/** The package path of an `@pkg:PATH` value, or undefined for an ordinary reference. */
export function pkgTemplatePath(value: string): string | undefined {
  return value.startsWith(PKG_TEMPLATE) ? value.slice(PKG_TEMPLATE.length) : undefined;
}

/** Why a value starting with `@` is not a usable template, or undefined when it is one. */
export function checkImageTemplate(value: string): string | undefined {
  const path = pkgTemplatePath(value);
  if (path === undefined) {
    const kind = /^@([^:]*)/.exec(value)?.[1] ?? '';
    return `unknown image template '@${kind}': only @pkg:PATH (a package directory) is supported`;
  }
  return path.trim() === '' ? '@pkg: needs the path of a package directory, e.g. @pkg:../pkg/init' : undefined;
}
