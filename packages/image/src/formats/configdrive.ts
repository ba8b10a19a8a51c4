// A config drive: a small ISO 9660 volume (Rock Ridge and Joliet names) that hands a host its
// user data at first boot, attached as a read-only CD-ROM. Labelled `cidata` (cloud-init's
// NoCloud; pkg/metadata looks for it) with `user-data` at its root. It holds secrets (join
// tokens), so it is only ever readable by its owner: staged in a private temp dir beside the
// output, written 0600, renamed into place.
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { HostTools } from '../hosttools.ts';
import { reproducibleTools, stampTree } from './common.ts';
import { sourceDateEpoch } from './epoch.ts';

export interface ConfigDriveOptions {
  /** The ISO to write; replaced whole, mode 0600. */
  out: string;
  /** Files on the drive by path, e.g. `{ 'user-data': '{…}' }`. */
  files: Record<string, string | Uint8Array>;
  /** Volume label; default `cidata`. */
  label?: string;
  tools: HostTools;
  /** Timestamp of the files and the volume (default: SOURCE_DATE_EPOCH or LinuxKit's). */
  sourceDateEpoch?: number;
}

const PATH = /^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/;
const LABEL = /^[A-Za-z0-9_-]{1,32}$/;

/** Writes a config drive ISO holding `files`, readable by its owner only. */
export async function writeConfigDrive(opts: ConfigDriveOptions): Promise<void> {
  const label = opts.label ?? 'cidata';
  if (!LABEL.test(label)) throw new Error(`config drive label ${JSON.stringify(label)} must match ${LABEL}`);
  const paths = Object.keys(opts.files);
  for (const p of paths) {
    if (!PATH.test(p)) throw new Error(`config drive file name ${JSON.stringify(p)} must be a relative path`);
  }
  if (paths.length === 0) throw new Error('a config drive needs at least one file');
  const epoch = sourceDateEpoch(opts.sourceDateEpoch);
  // mkdtemp makes the directory 0700: the staged files are never readable by anyone else.
  const tmp = await mkdtemp(join(dirname(opts.out), `.${basename(opts.out)}-`));
  try {
    const tree = join(tmp, 'tree');
    for (const [p, data] of Object.entries(opts.files)) {
      await mkdir(dirname(join(tree, p)), { recursive: true, mode: 0o700 });
      await writeFile(join(tree, p), data, { mode: 0o600 });
    }
    await stampTree(tree, epoch);
    const iso = join(tmp, 'drive.iso');
    await reproducibleTools(opts.tools, epoch).run('xorriso', [
      '-as',
      'mkisofs',
      '-quiet',
      '-o',
      iso,
      '-V',
      label,
      '-r',
      '-J',
      tree,
    ]);
    await chmod(iso, 0o600);
    await rename(iso, opts.out);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
