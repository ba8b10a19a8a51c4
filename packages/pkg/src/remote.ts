import type { Descriptor, Store } from './oci.ts';

/**
 * What builds need from registries: does a tag exist, push an image from the store, put an
 * index. References are fully qualified (`host/repo:tag`); the registry is the reference's.
 */
export interface Remote {
  /** The descriptor `ref` points at, or undefined when the registry has no such tag. */
  resolve(ref: string): Promise<Descriptor | undefined>;
  /** Manifest or index bytes for `ref`. */
  fetchManifest(ref: string): Promise<Buffer>;
  /** Copies `desc` (a manifest with its blobs, or an index with its children) from the store and tags it `ref`. */
  push(store: Store, desc: Descriptor, ref: string): Promise<void>;
  /** Puts manifest/index bytes (whose children are already there) at `ref`. */
  putManifest(ref: string, desc: Descriptor, bytes: Buffer): Promise<void>;
}

/** Signs what a reference points at (cosign-style), when a key is configured. */
export type Signer = (ref: string, desc: Descriptor) => Promise<void>;
