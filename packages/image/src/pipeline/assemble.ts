// The assemble stage: the layout's entries written once, to the `tar` output and the initrd at
// the same time. The tar lands in the output directory by rename; the initrd stays where the
// caller put it (a spool directory) for the formats. A failure removes both.
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Store, tempBeside } from '@stele/oci';
import type { LayoutStep } from '../assemble/index.ts';
import { type InitrdResult, InitrdWriter } from '../cpio.ts';
import { BuildError } from './errors.ts';
import type { BuildEvent, BuildImageResult } from './index.ts';
import { ociLayoutEntries } from './ocivolume.ts';
import { type ResolvedImages, volumeKey } from './pin.ts';
import { type EntrySink, TarFileSink, writeLayout } from './tar.ts';
import type { UnpackedImage } from './unpack.ts';

export interface AssembleInputs {
  store: Store;
  steps: LayoutStep[];
  mtime: number;
  /** Unpacked images by the reference the manifest writes. */
  image(ref: string): UnpackedImage;
  volumes: ResolvedImages['volumes'];
  outDir: string;
  name: string;
  /** Write `<outDir>/<name>.tar`. */
  tar: boolean;
  /** Write the initrd here (for the formats). */
  initrd?: string;
}

export interface Assembled {
  /** The tar output, when asked for. */
  outputs: BuildImageResult['outputs'];
  /** What the initrd writer split off (kernel, cmdline, ucode), when an initrd was written. */
  initrd: InitrdResult | undefined;
}

export async function assemble(a: AssembleInputs, emit: (e: BuildEvent) => void): Promise<Assembled> {
  emit({ type: 'phase', phase: 'assemble', detail: `${a.steps.length} steps` });
  await mkdir(a.outDir, { recursive: true });
  const tarOut = join(a.outDir, `${a.name}.tar`);
  const tarTmp = tempBeside(tarOut);
  let initrd: InitrdResult | undefined;
  const outputs: BuildImageResult['outputs'] = [];
  const tarFile = a.tar ? await open(tarTmp, 'wx') : undefined;
  const tarSink = tarFile ? new TarFileSink(tarFile) : undefined;
  const initrdWriter = a.initrd ? await InitrdWriter.open(a.initrd, { sourceDateEpoch: a.mtime }) : undefined;
  const sinks: EntrySink[] = [];
  if (tarSink) sinks.push(tarSink);
  if (initrdWriter) {
    sinks.push({
      begin: (e) => initrdWriter.begin(e),
      data: (c) => initrdWriter.data(c),
      end: () => initrdWriter.end(),
    });
  }
  try {
    await writeLayout(sinks, {
      steps: a.steps,
      mtime: a.mtime,
      image: a.image,
      ociLayout: (step) => {
        const vol = a.volumes.get(volumeKey(step.image, step.platforms));
        if (!vol) throw new BuildError(`${step.origin.location}: image ${step.image} was not resolved`);
        return ociLayoutEntries(a.store, vol, step, a.mtime);
      },
    });
    if (tarSink && tarFile) {
      await tarSink.finish();
      await tarFile.close();
      await rename(tarTmp, tarOut);
      outputs.push({ format: 'tar', files: [tarOut] });
      emit({ type: 'output', format: 'tar', files: [tarOut] });
    }
    if (initrdWriter) initrd = await initrdWriter.finish();
  } catch (err) {
    await tarFile?.close().catch(() => undefined);
    await rm(tarTmp, { force: true });
    await rm(tarOut, { force: true });
    await initrdWriter?.abort();
    throw err;
  }
  return { outputs, initrd };
}
