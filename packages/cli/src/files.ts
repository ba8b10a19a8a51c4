// The one atomic JSON writer lives with the image pipeline; the CLI uses it for descriptors.
export { writeJsonAtomic } from '@stele/image';

/**
 * The build descriptor Nx caches for a target (see packages/nx-plugin/src/descriptor.ts): what
 * was built, by digest, so a cache hit can be checked against the store.
 */
export interface BuildDescriptor {
  digest: string;
  mediaType: string;
  size: number;
  refs: string[];
  artifacts?: { path: string; digest?: string; size?: number }[];
}
