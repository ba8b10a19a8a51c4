// The first stage: the build's settings, settled before anything is read — the manifest's
// absolute path, the platform, the output formats and names, and the timestamp every output
// carries. Unknown arches and formats fail here.
import { basename, dirname, extname, resolve } from 'node:path';
import type { Platform } from '@stele/oci';
import { LINUXKIT_EPOCH, sourceDateEpoch } from '../formats/epoch.ts';
import { FORMATS, isFormatName } from '../formats/index.ts';
import { BuildError } from './errors.ts';
import type { BuildImageOptions } from './index.ts';

/** Every format name `stele build --format` takes: the disk/ISO ones plus the plain tar. */
export const BUILD_FORMATS = ['tar', ...Object.keys(FORMATS)] as const;

const ARCHES = new Set(['amd64', 'arm64', 'riscv64', 's390x', 'ppc64le']);

export interface BuildSettings {
  manifestPath: string;
  manifestDir: string;
  platform: Platform;
  /** The requested formats, each once (default kernel+initrd). */
  formats: string[];
  /** Base name of the outputs. */
  name: string;
  outDir: string;
  /** Seconds since the epoch: every entry's mtime and the formats' timestamps. */
  mtime: number;
}

export function buildSettings(
  opts: Pick<BuildImageOptions, 'manifest' | 'arch' | 'formats' | 'name' | 'dir' | 'sourceDateEpoch'>,
): BuildSettings {
  const manifestPath = resolve(opts.manifest);
  const arch = opts.arch ?? (process.arch === 'arm64' ? 'arm64' : 'amd64');
  if (!ARCHES.has(arch)) throw new BuildError(`unknown arch '${arch}' (known: ${[...ARCHES].join(', ')})`);
  const formats = opts.formats?.length ? [...new Set(opts.formats)] : ['kernel+initrd'];
  for (const f of formats) {
    if (f !== 'tar' && !isFormatName(f)) {
      throw new BuildError(`unknown format '${f}' (known: ${BUILD_FORMATS.join(', ')})`);
    }
  }
  return {
    manifestPath,
    manifestDir: dirname(manifestPath),
    platform: { os: 'linux', architecture: arch },
    formats,
    name: opts.name ?? basename(manifestPath, extname(manifestPath)),
    outDir: resolve(opts.dir ?? process.cwd()),
    mtime: opts.sourceDateEpoch ?? sourceDateEpoch(undefined) ?? LINUXKIT_EPOCH,
  };
}
