// What every format builder gets: its inputs as files, a private work dir inside the output's
// temp dir, the build timestamp, a seed for identifiers (a hash of the inputs — never random),
// and the host tools with SOURCE_DATE_EPOCH and MTOOLS_SKIP_CHECK set.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostTools, RunOptions, RunResult } from '../hosttools.ts';

export interface FormatContext {
  /** Base name of the outputs (LinuxKit's `-name`). */
  name: string;
  /** Where outputs are written; renamed into the real output dir by buildFormat. */
  outDir: string;
  /** Scratch space, removed afterwards. */
  workDir: string;
  kernel: string;
  /** The initrd to boot (with ucode.cpio already in front when given). */
  initrd: string;
  cmdline: string;
  /** Seconds since the epoch, stamped on everything. */
  epoch: number;
  /** sha256 of the inputs; identifiers (GUIDs, serials, CID) are derived from it. */
  seed: Buffer;
  /** Requested disk size for disk formats, in MiB (0: as small as fits). */
  sizeMb: number;
  tools: HostTools;
}

/** Host tools with the reproducibility environment applied to every call. */
export function reproducibleTools(tools: HostTools, epoch: number): HostTools {
  return {
    run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
      return tools.run(cmd, args, {
        ...opts,
        env: { SOURCE_DATE_EPOCH: String(epoch), MTOOLS_SKIP_CHECK: '1', TZ: 'UTC', ...opts.env },
      });
    },
  };
}

/** `n` bytes derived from the seed for one purpose (so different identifiers never collide). */
export function derive(seed: Buffer, purpose: string, n = 16): Buffer {
  const out = createHash('sha256').update(seed).update(`\0${purpose}`).digest();
  if (n > out.length) throw new Error('derive: at most 32 bytes');
  return out.subarray(0, n);
}

export async function sha256File(path: string): Promise<Buffer> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest();
}

/** Sets mtime and atime of `root` and everything below it to `epoch` (tools copy file times). */
export async function stampTree(root: string, epoch: number): Promise<void> {
  const st = await stat(root);
  if (st.isDirectory()) {
    for (const e of await readdir(root)) await stampTree(join(root, e), epoch);
  }
  await utimes(root, epoch, epoch);
}

/**
 * Single-quotes `s` for GRUB's shell-like parser: one word, taken literally, so a kernel command
 * line with spaces, quotes or `$` reaches the kernel unchanged.
 */
export function grubQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export const MiB = 1024 * 1024;

export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
