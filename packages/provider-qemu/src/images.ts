// Published images of the qemu provider: `<root>/<hex of the identity>/` holds `kernel`,
// `initrd.img`, `cmdline` and, written last, `published.json` with each file's size. A copy is
// made in a temp dir beside the others and renamed into place, so a directory either is
// complete or is an interrupted copy — one without a valid marker, or whose files' sizes differ
// from it — and an interrupted copy never counts as published.
import { copyFile, mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { BuiltImage, PublishedImage, PublishProgress } from '@stele/fleet';
import { fsyncDir, writeJsonAtomic } from '@stele/oci';
import { QemuProviderError } from './errors.ts';
import { alive } from './process.ts';

export const BOOT_FORMAT = 'kernel+initrd';

/** Where each file of a `stele build --format kernel+initrd` output goes, by its name's ending. */
const PARTS = [
  { suffix: '-kernel', file: 'kernel' },
  { suffix: '-initrd.img', file: 'initrd.img' },
  { suffix: '-cmdline', file: 'cmdline' },
] as const;

const MARKER = 'published.json';
/** Temp dirs of copies (`.publish-<hex>-<pid>-…`) and removals (`.removing-<hex>-<pid>-…`) under way. */
const TEMP = /^\.(?:publish|removing)-[0-9a-f]{64}-(\d+)-/;

interface Marker {
  identity: string;
  format: string;
  /** Size in bytes of each file. */
  sizes: Record<string, number>;
}

/** The hex of an image identity `sha256:<hex>` (it names the image's directory). */
export function identityHex(identity: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(identity);
  if (!m?.[1])
    throw new QemuProviderError(`image identity ${JSON.stringify(identity)} is not sha256:<64 hex>`, 'fatal');
  return m[1];
}

/** Writes a copied file's data to disk before its marker says it is there. */
async function syncFile(path: string): Promise<void> {
  const f = await open(path, 'r');
  try {
    await f.sync();
  } finally {
    await f.close();
  }
}

export class ImageStore {
  constructor(readonly root: string) {}

  /** The directory of image `identity` (complete or not). */
  dirOf(identity: string): string {
    return join(this.root, identityHex(identity));
  }

  private published(identity: string, dir: string): PublishedImage {
    return { identity, format: BOOT_FORMAT, ref: { dir } };
  }

  /** The complete copy of `identity`, checked against its marker; undefined when there is none. */
  async find(identity: string): Promise<PublishedImage | undefined> {
    const dir = this.dirOf(identity);
    const marker = await readFile(join(dir, MARKER), 'utf8')
      .then((t) => JSON.parse(t) as Marker)
      .catch(() => undefined);
    if (marker?.identity !== identity || marker.format !== BOOT_FORMAT || typeof marker.sizes !== 'object') {
      return undefined;
    }
    for (const { file } of PARTS) {
      const size = await stat(join(dir, file)).then(
        (s) => (s.isFile() ? s.size : -1),
        () => -1,
      );
      if (size !== marker.sizes[file]) return undefined;
    }
    return this.published(identity, dir);
  }

  /** Every complete copy. */
  async list(): Promise<PublishedImage[]> {
    const out: PublishedImage[] = [];
    for (const name of await readdir(this.root).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const found = await this.find(`sha256:${name}`);
      if (found) out.push(found);
    }
    return out;
  }

  /** Copies the built image in, unless a complete copy is there already (`reused`). */
  async publish(
    image: BuiltImage,
    onProgress?: (p: PublishProgress) => void,
  ): Promise<PublishedImage & { reused: boolean }> {
    if (image.format !== BOOT_FORMAT) {
      throw new QemuProviderError(`qemu boots ${BOOT_FORMAT} images, not ${image.format}`, 'user');
    }
    const hex = identityHex(image.identity);
    const earlier = await this.find(image.identity);
    if (earlier) return { ...earlier, reused: true };

    const sources = PARTS.map(({ suffix, file }) => {
      const from = image.files.find((f) => basename(f).endsWith(suffix));
      if (!from) {
        throw new QemuProviderError(
          `the built image has no *${suffix} file (files: ${image.files.join(', ')})`,
          'fatal',
        );
      }
      return { from, file };
    });
    const sizes: Record<string, number> = {};
    for (const { from, file } of sources) sizes[file] = (await stat(from)).size;
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);

    await mkdir(this.root, { recursive: true });
    await this.sweep();
    const tmp = await mkdtemp(join(this.root, `.publish-${hex}-${process.pid}-`));
    try {
      let done = 0;
      onProgress?.({ done, total });
      for (const { from, file } of sources) {
        await copyFile(from, join(tmp, file));
        await syncFile(join(tmp, file));
        done += sizes[file] ?? 0;
        onProgress?.({ done, total });
      }
      const marker: Marker = { identity: image.identity, format: BOOT_FORMAT, sizes };
      await writeJsonAtomic(join(tmp, MARKER), marker);
      const dir = this.dirOf(image.identity);
      // What sits there is not complete (find said so): an interrupted copy, put out of the way.
      await this.removeDir(dir);
      try {
        await rename(tmp, dir);
      } catch (err) {
        // Another publisher of the same image was quicker: its copy is as good as ours.
        const theirs = await this.find(image.identity);
        if (theirs) return { ...theirs, reused: true };
        throw err;
      }
      await fsyncDir(this.root);
      return { ...this.published(image.identity, dir), reused: false };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** Removes the copy of `identity`; `gone` when there was no complete one. */
  async remove(identity: string): Promise<'removed' | 'gone'> {
    const complete = await this.find(identity);
    const existed = await this.removeDir(this.dirOf(identity));
    return complete && existed ? 'removed' : 'gone';
  }

  /** Renames `dir` aside (it stops counting at once) and deletes it; false when it did not exist. */
  private async removeDir(dir: string): Promise<boolean> {
    const aside = join(this.root, `.removing-${basename(dir)}-${process.pid}-${Date.now()}`);
    try {
      await rename(dir, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    await rm(aside, { recursive: true, force: true });
    return true;
  }

  /** Deletes what interrupted copies and removals left: temp dirs whose process is gone. */
  private async sweep(): Promise<void> {
    for (const name of await readdir(this.root).catch(() => [] as string[])) {
      const pid = TEMP.exec(name)?.[1];
      if (pid && !alive(Number(pid))) await rm(join(this.root, name), { recursive: true, force: true });
    }
  }
}
