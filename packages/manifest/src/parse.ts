/** Text in, typed value or located errors out. */
import type { Node } from 'yaml';
import type { z } from 'zod';
import { checkOctalMode } from './checks.ts';
import { finishErrors, type ManifestError, type PathSegment } from './errors.ts';
import { goDecode } from './go-decode.ts';
import { issueMessage } from './schema/common.ts';
import { type Fleet, findInlineSecrets, fleetSchema } from './schema/fleet.ts';
import { type OsManifest, osCrossChecks, osManifestSchema } from './schema/os.ts';
import { type BuildYml, buildYmlSchema } from './schema/pkg.ts';
import { errorAtPath, type LoadedYaml, loadYaml, plainScalarAt } from './yaml.ts';

export type ParseResult<T> = { ok: true; value: T; doc: LoadedYaml } | { ok: false; errors: ManifestError[] };

export type Kind = 'os' | 'pkg' | 'fleet';
export const KINDS: readonly Kind[] = ['os', 'pkg', 'fleet'];

const KIND_NAMES: Record<Kind, string> = { os: 'OS manifest', pkg: 'package build.yml', fleet: 'fleet.yml' };

function toErrors(loaded: LoadedYaml, issue: z.core.$ZodIssue): ManifestError[] {
  const path = issue.path as PathSegment[];
  if (issue.code === 'unrecognized_keys') {
    const messages = issue.message.split('\n');
    return issue.keys.map((key, i) =>
      errorAtPath(loaded, [...path, key], messages[i] ?? messages[0] ?? `unknown key '${key}'`, 'key'),
    );
  }
  const at = issue.code === 'custom' && (issue.params as { at?: string } | undefined)?.at === 'key' ? 'key' : 'value';
  return [errorAtPath(loaded, path, modeMessage(loaded, issue) ?? issue.message, at)];
}

/**
 * A mode written without quotes is read by YAML as a decimal number (`0644` is 644, `0999`
 * is 999): say so, in terms of the text as written.
 */
function modeMessage(loaded: LoadedYaml, issue: z.core.$ZodIssue): string | undefined {
  if (issue.code !== 'invalid_type' || issue.expected !== 'string' || issue.path.at(-1) !== 'mode') return undefined;
  let value: unknown = loaded.data;
  for (const seg of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[seg];
  if (typeof value !== 'number') return undefined;
  const written = plainScalarAt(loaded, issue.path as PathSegment[]) ?? String(value);
  const bad = checkOctalMode(written);
  if (bad) return bad;
  return `write the mode in quotes ("${written}"): unquoted, YAML reads ${written} as the number ${value}`;
}

function parseWith<S extends z.ZodType>(
  schema: S,
  kind: Kind,
  text: string,
  file: string,
  options: { extra?: (loaded: LoadedYaml) => ManifestError[]; goStructs?: boolean } = {},
): ParseResult<z.infer<S>> {
  const { extra, goStructs } = options;
  const loaded = loadYaml(text, file);
  if (!loaded.ok) return loaded; // already finished
  let { data } = loaded.loaded;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    const err = errorAtPath(
      loaded.loaded,
      [],
      `a ${KIND_NAMES[kind]} must be a mapping of keys, not a list or a scalar`,
    );
    return { ok: false, errors: [err] };
  }
  if (goStructs) data = goDecode(schema, data, loaded.loaded.doc.contents as Node | null);
  const result = schema.safeParse(data, { error: issueMessage });
  const errors = result.success ? [] : result.error.issues.flatMap((issue) => toErrors(loaded.loaded, issue));
  if (extra) errors.push(...extra(loaded.loaded)); // sortErrors drops exact repeats
  if (result.success && errors.length === 0) return { ok: true, value: result.data, doc: loaded.loaded };
  return { ok: false, errors: finishErrors(errors) };
}

/** A LinuxKit OS manifest (`linuxkit.yml`, `os.yml`). */
export function parseOsManifest(text: string, file: string): ParseResult<OsManifest> {
  return parseWith(osManifestSchema, 'os', text, file, {
    extra: (loaded) => osCrossChecks(loaded.data).map(([path, message]) => errorAtPath(loaded, path, message)),
  });
}

/** A package's `build.yml`. */
export function parseBuildYml(text: string, file: string): ParseResult<BuildYml> {
  return parseWith(buildYmlSchema, 'pkg', text, file, { goStructs: true });
}

/** A Stele `fleet.yml`. */
export function parseFleet(text: string, file: string): ParseResult<Fleet> {
  return parseWith(fleetSchema, 'fleet', text, file, {
    extra: (loaded) => findInlineSecrets(loaded.data).map(([path, message]) => errorAtPath(loaded, path, message)),
  });
}

export type AnyDocument =
  | { kind: 'os'; value: OsManifest }
  | { kind: 'pkg'; value: BuildYml }
  | { kind: 'fleet'; value: Fleet };

/** Parses `text` as `kind`. */
export function parseKind(kind: Kind, text: string, file: string): ParseResult<AnyDocument> {
  const wrap = <T>(r: ParseResult<T>, make: (v: T) => AnyDocument): ParseResult<AnyDocument> =>
    r.ok ? { ok: true, value: make(r.value), doc: r.doc } : r;
  switch (kind) {
    case 'os':
      return wrap(parseOsManifest(text, file), (value) => ({ kind: 'os', value }));
    case 'pkg':
      return wrap(parseBuildYml(text, file), (value) => ({ kind: 'pkg', value }));
    case 'fleet':
      return wrap(parseFleet(text, file), (value) => ({ kind: 'fleet', value }));
  }
}

const OS_KEYS = ['kernel', 'init', 'onboot', 'onshutdown', 'services', 'files', 'volumes', 'trust'];
const PKG_KEYS = [
  'org',
  'tag',
  'arches',
  'dockerfile',
  'extra-sources',
  'gitrepo',
  'network',
  'disable-cache',
  'config',
  'buildArgs',
  'depends',
];
const FLEET_KEYS = ['provider', 'strategy', 'hosts', 'health', 'orchestrator', 'state'];

/** The top-level keys of a YAML mapping, read without a full parse (tolerates broken files). */
function topLevelKeys(text: string): Set<string> {
  const keys = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z][\w.-]*)\s*:/.exec(line);
    if (m?.[1]) keys.add(m[1]);
  }
  return keys;
}

/**
 * Which kind a file is: `build.yml`/`build.yaml` are packages, `fleet.yml`/`fleet.yaml`
 * fleets; otherwise the top-level keys decide, and an OS manifest is the default.
 */
export function detectKind(file: string, text: string): Kind {
  const base = file.split(/[\\/]/).pop()?.toLowerCase() ?? '';
  if (base === 'build.yml' || base === 'build.yaml') return 'pkg';
  if (base === 'fleet.yml' || base === 'fleet.yaml' || base.endsWith('.fleet.yml') || base.endsWith('.fleet.yaml')) {
    return 'fleet';
  }
  const keys = topLevelKeys(text);
  const score = (list: string[]) => list.filter((k) => keys.has(k)).length;
  const os = score(OS_KEYS);
  const pkg = score(PKG_KEYS) + (keys.has('image') ? 1 : 0);
  const fleet = score(FLEET_KEYS);
  if (fleet > 0 && fleet >= os && fleet >= pkg) return 'fleet';
  if (pkg > 0 && pkg > os) return 'pkg';
  return 'os';
}
