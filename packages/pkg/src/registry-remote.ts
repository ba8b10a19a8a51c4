import type { KeyObject } from 'node:crypto';
import {
  copyDescriptor,
  type Descriptor,
  parseReference,
  RegistryClient,
  RegistryError,
  type RegistryOptions,
  type Store,
  signImage,
} from './oci.ts';
import type { Remote, Signer } from './remote.ts';

/** The Remote port over @stele/oci's registry client: one client per registry host. */
export function registryRemote(options: RegistryOptions = {}): Remote & { close(): Promise<void> } {
  const clients = new Map<string, RegistryClient>();
  const repo = (ref: string) => {
    const r = parseReference(ref);
    let c = clients.get(r.registry);
    if (!c) {
      c = new RegistryClient(r.registry, options);
      clients.set(r.registry, c);
    }
    const target = r.digest ?? r.tag ?? 'latest';
    return { repository: c.repository(r.repository), target };
  };
  return {
    async resolve(ref) {
      const { repository, target } = repo(ref);
      try {
        return await repository.resolve(target);
      } catch (err) {
        if (err instanceof RegistryError && err.status === 404) return undefined;
        throw err;
      }
    },
    async fetchManifest(ref) {
      const { repository, target } = repo(ref);
      return (await repository.getManifest(target)).bytes;
    },
    async push(store: Store, desc: Descriptor, ref: string) {
      const { repository, target } = repo(ref);
      await copyDescriptor(
        store,
        desc,
        repository,
        [target],
        {},
        {
          descriptor: desc,
          blobsCopied: 0,
          blobsSkipped: 0,
          bytesCopied: 0,
        },
      );
    },
    async putManifest(ref, desc, bytes) {
      const { repository, target } = repo(ref);
      await repository.pushManifest(desc, bytes, [target]);
    },
    async close() {
      await Promise.all([...clients.values()].map((c) => c.close()));
    },
  };
}

/**
 * A Signer writing cosign signatures (tag scheme `sha256-<hex>.sig`) for an index and each
 * manifest in it, next to the image in its registry.
 */
export function cosignSigner(key: KeyObject, options: RegistryOptions = {}): Signer & { close(): Promise<void> } {
  const clients = new Map<string, RegistryClient>();
  const signer = async (ref: string, desc: Descriptor) => {
    const r = parseReference(ref);
    let c = clients.get(r.registry);
    if (!c) {
      c = new RegistryClient(r.registry, options);
      clients.set(r.registry, c);
    }
    await signImage(c.repository(r.repository), desc, key, `${r.registry}/${r.repository}`);
  };
  return Object.assign(signer, {
    async close() {
      await Promise.all([...clients.values()].map((c) => c.close()));
    },
  });
}
