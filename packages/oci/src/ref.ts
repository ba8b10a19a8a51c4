import { DEFAULT_REGISTRY, type ImageRef, parseImageRef, withDefaultTag } from '@stele/manifest';

/**
 * Parses an image reference by `@stele/manifest`'s grammar (Docker's: a first component with a
 * dot or colon, or `localhost`, is a registry; otherwise Docker Hub, and `library/` for one-part
 * names) for talking to a registry: a reference with neither tag nor digest gets `latest`, and a
 * bad one throws.
 */
export function parseReference(input: string): ImageRef {
  const r = parseImageRef(input);
  if (!r.ok) throw new Error(r.message);
  return withDefaultTag(r.ref);
}

/** The tag or digest to ask the registry for (digest preferred). */
export function referenceTarget(r: ImageRef): string {
  return r.digest ?? r.tag ?? 'latest';
}

/** The host to talk to: Docker Hub's API lives on another name. */
export function registryHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? 'registry-1.docker.io' : registry;
}

/** 127.0.0.0/8, ::1 and localhost: the only hosts plain HTTP is used for unasked. */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : (host.split(':')[0] ?? host);
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}
