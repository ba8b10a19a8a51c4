// The parse stage: the manifest read and validated, its `@pkg:PATH` templates expanded, and the
// public key images must be signed with, when one is given.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { formatError, type OsManifest, readOsManifest } from '@stele/manifest';
import { BuildError } from './errors.ts';
import type { BuildEvent } from './index.ts';
import { expandTemplates } from './resolve.ts';
import type { BuildSettings } from './settings.ts';

export interface BuildInputs {
  /** The manifest with templates expanded. */
  manifest: OsManifest;
  /** From `verifyKey`: every image must carry a valid signature made with it. */
  key: KeyObject | undefined;
}

async function loadManifest(path: string): Promise<OsManifest> {
  const r = await readOsManifest(path);
  if (!r.ok) throw new BuildError(r.errors.map(formatError).join('\n'));
  return r.value;
}

export async function loadInputs(
  s: BuildSettings,
  opts: { pkgOrg?: string; verifyKey?: string },
  emit: (e: BuildEvent) => void,
): Promise<BuildInputs> {
  emit({ type: 'phase', phase: 'parse', detail: s.manifestPath });
  const manifest = await expandTemplates(await loadManifest(s.manifestPath), s.manifestDir, opts.pkgOrg);
  let key: KeyObject | undefined;
  if (opts.verifyKey) {
    try {
      key = createPublicKey(await readFile(opts.verifyKey, 'utf8'));
    } catch (err) {
      throw new BuildError(`--verify-key ${opts.verifyKey}: ${(err as Error).message}`);
    }
  }
  return { manifest, key };
}
