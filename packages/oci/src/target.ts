import type { Readable } from 'node:stream';
import type { Descriptor } from './descriptor.ts';

/** Reports bytes as they move, for progress display. */
export type OnBytes = (n: number) => void;

/** Somewhere images are read from: a registry repository or the local store. */
export interface Source {
  /** For messages: `registry 127.0.0.1:5000/foo`, `store /home/u/.cache/stele/oci`. */
  describe(): string;
  /** A tag, a digest, or (for the store) a reference name → the manifest's descriptor. */
  resolve(ref: string): Promise<Descriptor>;
  /** Manifest or index bytes, verified against `desc.digest`. */
  fetchManifest(desc: Descriptor): Promise<Buffer>;
  /** A blob's bytes as a stream; the consumer verifies them. */
  fetchBlob(desc: Descriptor): Promise<Readable>;
}

/** Somewhere images are written to. Every write verifies what it writes. */
export interface Sink {
  describe(): string;
  hasBlob(desc: Descriptor): Promise<boolean>;
  /**
   * Stores a blob. `open` may be called more than once (retries after a broken connection); each
   * call must give the blob from its start.
   */
  pushBlob(desc: Descriptor, open: () => Promise<Readable>, onBytes?: OnBytes): Promise<void>;
  hasManifest(desc: Descriptor): Promise<boolean>;
  /** Stores a manifest or index, then points each tag (store: reference name) at it. */
  pushManifest(desc: Descriptor, bytes: Buffer, tags: string[]): Promise<void>;
}
