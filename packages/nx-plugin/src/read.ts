/**
 * Reads the three YAML kinds through `@stele/manifest` (full schema validation, errors with
 * file:line:col) and keeps the little the plugin needs: names, the image references that become
 * dependency edges, and the files that are task inputs. Nothing here throws for bad input.
 * Loaded lazily by `scan.ts`: a warm Nx run whose files all hit the parse cache never loads zod.
 */
import { posix } from 'node:path';
import {
  errorAtPath,
  type ManifestError,
  type PathSegment,
  parseBuildYml,
  parseFleet,
  parseImageRef,
  parseOsManifest,
  pkgTemplatePath,
} from '@stele/manifest';
import { readDockerfile } from '@stele/pkg/dockerfile';
import type { FleetInfo, Kind, OsInfo, PackageInfo, ProjectInfo } from './info.ts';

/** `within('pkg/a', '../b')` → `pkg/b`; undefined when the path leaves the workspace. */
function within(base: string, rel: string): string | undefined {
  const p = posix.normalize(posix.join(base, rel));
  return p.startsWith('../') || p === '..' || posix.isAbsolute(rel) ? undefined : p;
}

/**
 * `docker.io/linuxkit/sshd:v1@sha256:…` → `linuxkit/sshd`: the repository, without registry,
 * tag or digest, so a package matches wherever it is pushed. `alpine` → `library/alpine`.
 */
export function repositoryOf(ref: string): string | undefined {
  const r = parseImageRef(ref.trim());
  return r.ok ? r.ref.repository : undefined;
}

export function readPackage(file: string, text: string): PackageInfo {
  const dir = posix.dirname(file);
  const info: PackageInfo = {
    kind: 'package',
    file,
    errors: [],
    org: '',
    image: '',
    dockerfile: posix.join(dir, 'Dockerfile'),
    froms: [],
    extraSources: [],
  };
  const r = parseBuildYml(text, file);
  if (!r.ok) {
    info.errors = r.errors;
    return info;
  }
  const b = r.value;
  info.image = b.image;
  info.org = b.org ?? '';
  if (b.dockerfile !== undefined) {
    const p = within(dir, b.dockerfile);
    if (p) info.dockerfile = p;
    else info.errors.push(errorAtPath(r.doc, ['dockerfile'], 'must be a path inside the workspace'));
  }
  (b['extra-sources'] ?? []).forEach((entry, i) => {
    const p = within(dir, entry.split(':')[0] ?? '');
    if (p) info.extraSources.push(p);
    else info.errors.push(errorAtPath(r.doc, ['extra-sources', i], 'the source must be inside the workspace'));
  });
  return info;
}

export function readOs(file: string, text: string): OsInfo {
  const info: OsInfo = { kind: 'os', file, errors: [], images: [], packages: [], sources: [] };
  const r = parseOsManifest(text, file);
  if (!r.ok) {
    info.errors = r.errors;
    return info;
  }
  const m = r.value;
  const refs: string[] = [
    ...(m.kernel?.image ? [m.kernel.image] : []),
    ...(m.init ?? []),
    ...[...(m.onboot ?? []), ...(m.onshutdown ?? []), ...(m.services ?? [])].map((e) => e.image),
    ...(m.volumes ?? []).flatMap((v) => (v.image ? [v.image] : [])),
  ];
  const dir = posix.dirname(file);
  const images = new Set<string>();
  const packages = new Set<string>();
  for (const ref of refs) {
    const pkgPath = pkgTemplatePath(ref);
    if (pkgPath !== undefined) {
      // `@pkg:PATH` is relative to the manifest; one outside the workspace is no project of ours.
      const p = within(dir, pkgPath.trim());
      if (p) packages.add(p);
      continue;
    }
    const repo = repositoryOf(ref);
    if (repo) images.add(repo);
  }
  info.images = [...images].sort();
  info.packages = [...packages].sort();
  (m.files ?? []).forEach((f, i) => {
    const source = f.source;
    if (source === undefined || source === '' || source.startsWith('~') || posix.isAbsolute(source)) return;
    const path: PathSegment[] = ['files', i, 'source'];
    const p = within(dir, source);
    if (!p) {
      info.errors.push(errorAtPath(r.doc, path, 'a source outside the workspace cannot be a task input'));
      return;
    }
    const { message: _, ...at } = errorAtPath(r.doc, path, '');
    info.sources.push({ path: p, optional: f.optional === true, at });
  });
  return info;
}

export function readFleet(file: string, text: string): FleetInfo {
  const r = parseFleet(text, file);
  if (!r.ok) return { kind: 'fleet', file, errors: r.errors, manifest: undefined, at: at(file) };
  const { message: _, ...where } = errorAtPath(r.doc, ['image'], '');
  const p = within(posix.dirname(file), r.value.image);
  const errors: ManifestError[] = p ? [] : [{ ...where, message: 'must be a path inside the workspace' }];
  return { kind: 'fleet', file, errors, manifest: p, at: where };
}

function at(file: string): Omit<ManifestError, 'message'> {
  return { file, line: 1, col: 1, path: '' };
}

export function readProject(file: string, kind: Kind, text: string): ProjectInfo {
  if (kind === 'package') return readPackage(file, text);
  if (kind === 'os') return readOs(file, text);
  return readFleet(file, text);
}

/**
 * Repositories of the images a Dockerfile uses — `FROM`, `COPY --from`, `RUN --mount from` —
 * external ones included (only repo packages match); earlier stages are not images.
 */
export function dockerfileRepositories(text: string): string[] {
  const out = new Set<string>();
  for (const use of readDockerfile(text).images) {
    const repo = repositoryOf(use.image);
    if (repo) out.add(repo);
  }
  return [...out];
}
