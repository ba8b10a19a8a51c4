/**
 * A package's `build.yml` (LinuxKit `pkg build`): the keys LinuxKit's pkglib reads, with the
 * checks it makes while loading (depends, extra sources, tag template) done here.
 */
import { z } from 'zod';
import { checkBuildArg, checkExtraSource, checkTagTemplate } from '../checks.ts';
import { parseImageRef } from '../image-ref.ts';
import { checkedString, report, strict } from './common.ts';
import { imageConfigSchema } from './image.ts';

/** Architectures LinuxKit and Docker name. */
export const ARCHES = ['amd64', 'arm64', 'riscv64', 's390x', 'ppc64le', 'arm', '386'] as const;

export const DEFAULT_ORG = 'linuxkit';
export const DEFAULT_TAG_TEMPLATE = '{{.Hash}}';
export const DEFAULT_ARCHES = ['amd64', 'arm64', 'riscv64'];

const dependImage = checkedString((s) => {
  const r = parseImageRef(s);
  if (!r.ok) return r.message;
  if (r.ref.digest === undefined) return `image '${s}' lacks a digest (pin it as NAME@sha256:...)`;
  return undefined;
});

export const dockerImagesSchema = strict({
  'target-dir': z.string(),
  target: z.string(),
  'from-file': z.string(),
  list: z.array(dependImage),
})
  .partial()
  .superRefine((d, ctx) => {
    if (d.target && d['target-dir']) {
      report(ctx, ['target-dir'], "'target' and 'target-dir' are mutually exclusive", 'key');
    }
    if (d['from-file'] && d.list && d.list.length > 0) {
      report(ctx, ['list'], "'list' and 'from-file' are mutually exclusive", 'key');
    }
    for (const key of ['target-dir', 'target', 'from-file'] as const) {
      const p = d[key];
      if (p && (p.startsWith('/') || p.split('/').includes('..'))) {
        report(ctx, [key], `'${p}' must be a path inside the package directory`);
      }
    }
  });

export const buildYmlSchema = strict({
  image: z.string(),
  org: z.string(),
  tag: checkedString(checkTagTemplate),
  dockerfile: z.string(),
  arches: z.array(z.enum(ARCHES)),
  'extra-sources': z.array(checkedString(checkExtraSource)),
  gitrepo: z.string(),
  network: z.boolean(),
  'disable-cache': z.boolean(),
  config: imageConfigSchema,
  buildArgs: z.array(checkedString(checkBuildArg)),
  depends: strict({ 'docker-images': dockerImagesSchema }).partial(),
})
  .partial()
  .required({ image: true })
  .superRefine((b, ctx) => {
    if (typeof b.image !== 'string') return;
    if (b.image === '') {
      report(ctx, ['image'], 'image must not be empty');
      return;
    }
    const org = typeof b.org === 'string' ? b.org : DEFAULT_ORG;
    const r = parseImageRef(`${org}/${b.image}`);
    if (!r.ok || r.ref.tag !== undefined || r.ref.digest !== undefined) {
      const where = typeof b.org === 'string' ? ['org'] : ['image'];
      report(ctx, where, `'${org}/${b.image}' is not a valid repository name${r.ok ? '' : `: ${r.message}`}`);
    }
  });

export type BuildYml = z.infer<typeof buildYmlSchema>;
export type DockerImagesDepends = z.infer<typeof dockerImagesSchema>;
