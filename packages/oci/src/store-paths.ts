// Where the local store lives and where a blob sits in it. Path arithmetic only, so the Nx plugin
// imports it (`@stele/oci/store-paths`) without loading the store.
import { homedir } from 'node:os';
import { join } from 'node:path';

/** How `defaultStoreDir` decides, for help texts. */
export const DEFAULT_STORE_DIR_HELP = '$STELE_CACHE, else $XDG_CACHE_HOME/stele/oci, else ~/.cache/stele/oci';

/** `$STELE_CACHE`, else `$XDG_CACHE_HOME/stele/oci`, else `~/.cache/stele/oci`. */
export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STELE_CACHE) return env.STELE_CACHE;
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'stele', 'oci');
}

/** A blob's path in an OCI image layout, `blobs/<alg>/<hex>` (the digest is not checked here). */
export function blobPath(storeDir: string, digest: string): string {
  const [alg = '', hex = ''] = digest.split(':');
  return join(storeDir, 'blobs', alg, hex);
}
