// The format stage: every requested disk, ISO and boot format, each made from the initrd and the
// kernel the assemble stage split off. A failing format takes every output of the build with it:
// no half set of outputs.
import { rm } from 'node:fs/promises';
import type { InitrdResult } from '../cpio.ts';
import { buildFormat } from '../formats/index.ts';
import { type HostTools, spawnHostTools } from '../hosttools.ts';
import { BuildError } from './errors.ts';
import type { BuildEvent, BuildImageResult } from './index.ts';

export interface DiskInputs {
  formats: string[];
  /** The initrd file and what was split off it. */
  initrdPath: string;
  boot: InitrdResult | undefined;
  name: string;
  outDir: string;
  mtime: number;
  tools?: HostTools;
  /** Outputs this build has already placed (removed too when a format fails). */
  placed: BuildImageResult['outputs'];
}

/** `placed` followed by each format's files, in the order asked. */
export async function writeDiskFormats(
  d: DiskInputs,
  emit: (e: BuildEvent) => void,
): Promise<BuildImageResult['outputs']> {
  const outputs = [...d.placed];
  if (!d.formats.length) return outputs;
  const boot = d.boot;
  if (!boot?.kernel) throw new BuildError('the manifest has no kernel: only the tar format can be built');
  const tools = d.tools ?? spawnHostTools();
  for (const format of d.formats) {
    emit({ type: 'phase', phase: 'format', detail: format });
    try {
      const r = await buildFormat(format, {
        name: d.name,
        dir: d.outDir,
        kernel: boot.kernel,
        initrd: d.initrdPath,
        cmdline: boot.cmdline ?? '',
        ...(boot.ucode ? { ucode: boot.ucode } : {}),
        tools,
        sourceDateEpoch: d.mtime,
      });
      outputs.push({ format, files: r.files });
      emit({ type: 'output', format, files: r.files });
    } catch (err) {
      for (const o of outputs) for (const f of o.files) await rm(f, { force: true });
      throw new BuildError(`format ${format}: ${(err as Error).message}`);
    }
  }
  return outputs;
}
