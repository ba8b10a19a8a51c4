/**
 * SPDX 2.3 (JSON) software bills of materials for package images, generated from the image's
 * own filesystem — its layers streamed from the store or a registry, never unpacked to disk:
 *
 * - Debian packages from `/var/lib/dpkg/status` and `/var/lib/dpkg/status.d/*` (distroless),
 *   purl `pkg:deb/<debian|ubuntu>/NAME@VERSION?arch=ARCH&distro=ID-VERSION_ID`, supplier from
 *   `Maintainer`, declared licence from `/usr/share/doc/NAME/copyright` when it is in Debian's
 *   machine-readable format and every licence in it maps to an SPDX id (else NOASSERTION, with
 *   the Debian names in licenseComments).
 * - Alpine packages from `/lib/apk/db/installed`, purl `pkg:apk/alpine/NAME@VERSION?arch=…`,
 *   licence from the `L:` field.
 * - The image itself as the described package (name = repository, versionInfo = tag, SHA-256
 *   checksum = the manifest digest, purl `pkg:oci/…`), DESCRIBES from the document and CONTAINS
 *   to each package and listed file.
 * - Regular files no package database owns (dpkg `info/*.list`, apk `F:`/`R:`), with SHA-1 (which
 *   SPDX requires) and SHA-256, at most `maxFiles` of them (sorted by path; the document comment
 *   says how many were left out). Package-database files themselves are not listed.
 *
 * Output is deterministic — the same image gives the same bytes: SPDX ids derive from purls,
 * digests and paths; documentNamespace from the manifest digest; `created` is $SOURCE_DATE_EPOCH,
 * else the image config's `created`, else 1970-01-01T00:00:00Z; packages, files and relationships
 * are sorted.
 */
import { createHash } from 'node:crypto';
import {
  type Descriptor,
  type ImageManifest,
  type Platform,
  parseDigest,
  parseManifest,
  type Source,
} from '@stele/oci';
import { type Rootfs, readRootfs } from './sbom-rootfs.ts';

export const SPDX_VERSION = 'SPDX-2.3';
export const SPDX_JSON_MEDIA_TYPE = 'application/spdx+json';
export const STELE_CREATOR = 'Tool: stele';
const NOASSERTION = 'NOASSERTION';

export interface SpdxChecksum {
  algorithm: 'SHA1' | 'SHA256' | 'SHA512' | string;
  checksumValue: string;
}

export interface SpdxExternalRef {
  referenceCategory: 'PACKAGE-MANAGER' | 'SECURITY' | 'PERSISTENT-ID' | 'OTHER' | string;
  referenceType: string;
  referenceLocator: string;
}

export interface SpdxPackage {
  name: string;
  SPDXID: string;
  versionInfo?: string;
  supplier?: string;
  originator?: string;
  downloadLocation: string;
  filesAnalyzed?: boolean;
  homepage?: string;
  sourceInfo?: string;
  licenseConcluded?: string;
  licenseDeclared?: string;
  licenseComments?: string;
  copyrightText?: string;
  summary?: string;
  checksums?: SpdxChecksum[];
  externalRefs?: SpdxExternalRef[];
  primaryPackagePurpose?: string;
  comment?: string;
}

export interface SpdxFile {
  fileName: string;
  SPDXID: string;
  checksums: SpdxChecksum[];
  licenseConcluded?: string;
  copyrightText?: string;
}

export interface SpdxRelationship {
  spdxElementId: string;
  relationshipType: string;
  relatedSpdxElement: string;
}

export interface SpdxDocument {
  spdxVersion: string;
  dataLicense: string;
  SPDXID: string;
  name: string;
  documentNamespace: string;
  creationInfo: { creators: string[]; created: string; comment?: string };
  comment?: string;
  packages: SpdxPackage[];
  files?: SpdxFile[];
  relationships: SpdxRelationship[];
}

/** What the SBOM describes: the image as its package. */
export interface SbomSubject {
  /** Repository, e.g. `127.0.0.1:5000/stele/sshd` (the package name of the image). */
  name: string;
  /** Tag, e.g. the package's source-tree tag. */
  version: string;
  /** Platform of the image (default: from its config). */
  platform?: Platform;
}

export interface SbomOptions {
  /** The document's `created`, as a Date or an RFC 3339 string (default: see the module header). */
  created?: Date | string;
  /** For SOURCE_DATE_EPOCH (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Unowned files listed at most (default 1000; 0: none). */
  maxFiles?: number;
  /** Read Debian copyright files for licences (default true). */
  licenses?: boolean;
  /** documentNamespace prefix (default https://stele.invalid/spdx). */
  namespaceBase?: string;
}

export interface SbomResult {
  document: SpdxDocument;
  /** The document as it is stored: JSON, two-space indent, newline at the end. */
  bytes: Buffer;
  packages: number;
  files: number;
  /** Unowned files left out because of maxFiles. */
  filesOmitted: number;
}

const DPKG_STATUS = 'var/lib/dpkg/status';
const DPKG_STATUS_D = 'var/lib/dpkg/status.d/';
const DPKG_INFO = 'var/lib/dpkg/info/';
const APK_DB = 'lib/apk/db/installed';
const OS_RELEASE = ['etc/os-release', 'usr/lib/os-release'];
const COPYRIGHT = /^usr\/share\/doc\/([^/]+)\/copyright$/;
/** Package-database state: not listed as unowned files. */
const DB_DIRS = ['var/lib/dpkg/', 'lib/apk/'];

export class SbomError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SbomError';
  }
}

// ---------------------------------------------------------------------------------------------
// Control-file parsing (dpkg status, distroless status.d, apk installed).

/** RFC 822-style paragraphs: `Field: value`, continuation lines start with space or tab. */
export function parseControl(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  let cur = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') {
      if (cur.size) out.push(cur);
      cur = new Map();
      last = undefined;
      continue;
    }
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      cur.set(last, `${cur.get(last)}\n${line.slice(1)}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).toLowerCase();
    cur.set(last, line.slice(colon + 1).trim());
  }
  if (cur.size) out.push(cur);
  return out;
}

/** Alpine's `K:value` lines, packages separated by blank lines. Repeated keys (F, R) become lists. */
function parseApk(text: string): Map<string, string[]>[] {
  const out: Map<string, string[]>[] = [];
  let cur = new Map<string, string[]>();
  for (const line of text.split(/\r?\n/)) {
    if (line === '') {
      if (cur.size) out.push(cur);
      cur = new Map();
      continue;
    }
    if (line[1] !== ':') continue;
    const k = line[0] as string;
    const list = cur.get(k) ?? [];
    list.push(line.slice(2));
    cur.set(k, list);
  }
  if (cur.size) out.push(cur);
  return out;
}

function parseOsRelease(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of (text ?? '').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    out[m[1] as string] = (m[2] as string).replace(/^["']|["']$/g, '');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Identifiers.

const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');

/** Characters SPDX ids allow: letters, digits, `.` and `-`. */
export function spdxIdPart(s: string): string {
  return s.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
}

function purlPart(s: string): string {
  return encodeURIComponent(s);
}

function purlQualifiers(q: Record<string, string | undefined>): string {
  const parts = Object.keys(q)
    .filter((k) => q[k])
    .sort()
    .map(
      (k) =>
        `${k}=${encodeURIComponent(q[k] as string)
          .replace(/%2F/g, '/')
          .replace(/%3A/g, ':')}`,
    );
  return parts.length ? `?${parts.join('&')}` : '';
}

/** `Name <email>` → `Person: Name (email)`; SPDX's supplier syntax. */
export function supplierOf(maintainer: string | undefined): string | undefined {
  if (!maintainer) return undefined;
  const m = /^(.*?)\s*<([^>]*)>\s*$/.exec(maintainer.trim());
  if (m) return `Person: ${m[1] || m[2]} (${m[2]})`;
  return `Person: ${maintainer.trim()}`;
}

// ---------------------------------------------------------------------------------------------
// Licences.

const DEBIAN_LICENSES: Record<string, string> = {
  expat: 'MIT',
  mit: 'MIT',
  isc: 'ISC',
  zlib: 'Zlib',
  'apache-2.0': 'Apache-2.0',
  'apache-2': 'Apache-2.0',
  'bsd-2-clause': 'BSD-2-Clause',
  'bsd-3-clause': 'BSD-3-Clause',
  'bsd-4-clause': 'BSD-4-Clause',
  'cc0-1.0': 'CC0-1.0',
  'mpl-1.1': 'MPL-1.1',
  'mpl-2.0': 'MPL-2.0',
  x11: 'X11',
  curl: 'curl',
  openssl: 'OpenSSL',
  ssleay: 'SSLeay-standalone',
  fsfap: 'FSFAP',
  fsful: 'FSFUL',
  fsfullr: 'FSFULLR',
  'psf-2': 'PSF-2.0',
  'artistic-2.0': 'Artistic-2.0',
  'bzip2-1.0.6': 'bzip2-1.0.6',
  'unicode-dfs-2016': 'Unicode-DFS-2016',
  sleepycat: 'Sleepycat',
  'ofl-1.1': 'OFL-1.1',
  'python-2.0': 'Python-2.0',
};

/** A Debian copyright-format licence short name as an SPDX id, or undefined when unknown. */
export function debianLicenseToSpdx(name: string): string | undefined {
  const n = name.trim();
  const gnu = /^(A|L)?GPL-(\d(?:\.\d)?)(\+)?$/i.exec(n) ?? /^(GFDL)-(\d\.\d)(\+)?$/i.exec(n);
  if (gnu) {
    const family = gnu[1]?.toUpperCase() === 'GFDL' ? 'GFDL' : `${(gnu[1] ?? '').toUpperCase()}GPL`;
    const v = (gnu[2] as string).includes('.') ? gnu[2] : `${gnu[2]}.0`;
    return `${family}-${v}-${gnu[3] ? 'or-later' : 'only'}`;
  }
  const mapped = DEBIAN_LICENSES[n.toLowerCase()];
  return mapped || undefined;
}

/**
 * The declared licence of a Debian package from its machine-readable copyright file: each
 * `License:` field (alternatives joined by `or`/`and`) becomes an expression, the distinct ones
 * joined with AND. Unknown names (or a file not in the format) → NOASSERTION with the names in
 * `comment`.
 */
export function debianCopyrightLicense(text: string): { expression: string; comment?: string } {
  if (!/^Format:\s*\S*copyright-format/im.test(text)) return { expression: NOASSERTION };
  const expressions = new Set<string>();
  const unknown = new Set<string>();
  for (const m of text.matchAll(/^License:[ \t]*(.+)$/gim)) {
    const value = (m[1] as string).trim();
    const tokens = value.split(/\s+(or|and)\s+|\s*,\s*/i).filter((t) => t !== undefined && t !== '');
    const parts: string[] = [];
    for (const t of tokens) {
      if (/^(or|and)$/i.test(t)) {
        parts.push(t.toUpperCase());
        continue;
      }
      const id = debianLicenseToSpdx(t);
      if (id) parts.push(id);
      else unknown.add(t);
    }
    if (parts.length) expressions.add(parts.length > 1 ? `(${parts.join(' ')})` : (parts[0] as string));
  }
  if (unknown.size || !expressions.size) {
    const names = [...unknown].sort();
    return {
      expression: NOASSERTION,
      ...(names.length ? { comment: `licences named in the Debian copyright file: ${names.join(', ')}` } : {}),
    };
  }
  const list = [...expressions].sort();
  const expr = list.length === 1 ? (list[0] as string).replace(/^\((.*)\)$/, '$1') : list.join(' AND ');
  return { expression: expr };
}

/** Alpine's `L:` field (already SPDX-ish): operators upper-cased; anything odd → NOASSERTION. */
export function apkLicense(value: string | undefined): string {
  if (!value) return NOASSERTION;
  const tokens = value.trim().split(/\s+/);
  const out: string[] = [];
  for (const t of tokens) {
    if (/^(and|or|with)$/i.test(t)) out.push(t.toUpperCase());
    else if (/^\(?[A-Za-z0-9][A-Za-z0-9.+-]*\)?$/.test(t)) out.push(t);
    else return NOASSERTION;
  }
  return out.join(' ');
}

// ---------------------------------------------------------------------------------------------
// Packages from the package databases.

interface Found {
  pkg: SpdxPackage;
  purl: string;
}

function distroQualifier(os: Record<string, string>): string | undefined {
  return os.ID && os.VERSION_ID ? `${os.ID}-${os.VERSION_ID}` : undefined;
}

function dpkgPackages(rootfs: Rootfs, os: Record<string, string>, licenses: boolean): Found[] {
  const sources: string[] = [];
  if (rootfs.contents.has(DPKG_STATUS)) sources.push(DPKG_STATUS);
  for (const p of [...rootfs.contents.keys()].sort()) {
    if (p.startsWith(DPKG_STATUS_D) && !p.slice(DPKG_STATUS_D.length).includes('/') && !p.endsWith('.md5sums')) {
      sources.push(p);
    }
  }
  const vendor = os.ID === 'ubuntu' ? 'ubuntu' : 'debian';
  const out: Found[] = [];
  for (const file of sources) {
    const text = (rootfs.contents.get(file) as Buffer).toString('utf8');
    for (const para of parseControl(text)) {
      const name = para.get('package');
      const version = para.get('version');
      if (!name || !version) continue;
      const status = para.get('status');
      if (status && status.split(/\s+/).pop() !== 'installed') continue;
      const arch = para.get('architecture');
      const purl = `pkg:deb/${vendor}/${purlPart(name)}@${purlPart(version)}${purlQualifiers({
        arch,
        distro: distroQualifier(os),
      })}`;
      let licenseDeclared = NOASSERTION;
      let licenseComments: string | undefined;
      const copyright = licenses ? rootfs.contents.get(`usr/share/doc/${name}/copyright`) : undefined;
      if (copyright) {
        const l = debianCopyrightLicense(copyright.toString('utf8'));
        licenseDeclared = l.expression;
        licenseComments = l.comment;
      }
      const supplier = supplierOf(para.get('maintainer'));
      const homepage = para.get('homepage');
      const source = para.get('source');
      const summary = para.get('description')?.split('\n')[0];
      out.push({
        purl,
        pkg: {
          name,
          SPDXID: `SPDXRef-Package-deb-${spdxIdPart(name)}-${sha256hex(purl).slice(0, 16)}`,
          versionInfo: version,
          ...(supplier ? { supplier } : {}),
          downloadLocation: NOASSERTION,
          filesAnalyzed: false,
          ...(homepage && /^https?:\/\//.test(homepage) ? { homepage } : {}),
          sourceInfo: `from the dpkg database /${file}${source ? `; source package ${source}` : ''}`,
          licenseConcluded: NOASSERTION,
          licenseDeclared,
          ...(licenseComments ? { licenseComments } : {}),
          copyrightText: NOASSERTION,
          ...(summary ? { summary } : {}),
          externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl }],
        },
      });
    }
  }
  return out;
}

function apkPackages(rootfs: Rootfs, os: Record<string, string>): Found[] {
  const db = rootfs.contents.get(APK_DB);
  if (!db) return [];
  const vendor = os.ID && os.ID !== 'alpine' ? spdxIdPart(os.ID).toLowerCase() : 'alpine';
  const out: Found[] = [];
  for (const p of parseApk(db.toString('utf8'))) {
    const name = p.get('P')?.[0];
    const version = p.get('V')?.[0];
    if (!name || !version) continue;
    const arch = p.get('A')?.[0];
    const purl = `pkg:apk/${vendor}/${purlPart(name)}@${purlPart(version)}${purlQualifiers({
      arch,
      distro: distroQualifier(os),
    })}`;
    const supplier = supplierOf(p.get('m')?.[0]);
    const homepage = p.get('U')?.[0];
    const origin = p.get('o')?.[0];
    const summary = p.get('T')?.[0];
    out.push({
      purl,
      pkg: {
        name,
        SPDXID: `SPDXRef-Package-apk-${spdxIdPart(name)}-${sha256hex(purl).slice(0, 16)}`,
        versionInfo: version,
        ...(supplier ? { supplier } : {}),
        downloadLocation: NOASSERTION,
        filesAnalyzed: false,
        ...(homepage && /^https?:\/\//.test(homepage) ? { homepage } : {}),
        sourceInfo: `from the apk database /${APK_DB}${origin ? `; origin ${origin}` : ''}`,
        licenseConcluded: NOASSERTION,
        licenseDeclared: apkLicense(p.get('L')?.[0]),
        copyrightText: NOASSERTION,
        ...(summary ? { summary } : {}),
        externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl }],
      },
    });
  }
  return out;
}

/**
 * `path` with symlinked directories along it resolved inside the image (merged /usr: dpkg says
 * `/bin/cat`, the file is `usr/bin/cat` behind the `bin -> usr/bin` link).
 */
export function resolveDirs(rootfs: Rootfs, path: string): string {
  let parts = path.split('/').filter((x) => x && x !== '.');
  for (let hops = 0, i = 0; i < parts.length - 1; i++) {
    const prefix = parts.slice(0, i + 1).join('/');
    const f = rootfs.files.get(prefix);
    if (f?.type !== 'symlink' || !f.linkname) continue;
    if (++hops > 40) return path;
    const base = f.linkname.startsWith('/') ? [] : parts.slice(0, i);
    const target: string[] = [];
    for (const c of [...base, ...f.linkname.split('/')]) {
      if (!c || c === '.') continue;
      if (c === '..') target.pop();
      else target.push(c);
    }
    parts = [...target, ...parts.slice(i + 1)];
    i = -1;
  }
  return parts.join('/');
}

/** Paths some package database says belong to a package (as they are in the image). */
function ownedPaths(rootfs: Rootfs): Set<string> {
  const listed: string[] = [];
  for (const [p, c] of rootfs.contents) {
    if (p.startsWith(DPKG_INFO) && p.endsWith('.list')) {
      for (const line of c.toString('utf8').split('\n')) {
        const n = line.trim().replace(/^\/+/, '');
        if (n && n !== '.') listed.push(n);
      }
    }
  }
  const apk = rootfs.contents.get(APK_DB);
  if (apk) {
    let dir = '';
    for (const line of apk.toString('utf8').split('\n')) {
      if (line.startsWith('F:')) dir = line.slice(2);
      else if (line.startsWith('R:')) listed.push(dir ? `${dir}/${line.slice(2)}` : line.slice(2));
    }
  }
  const owned = new Set<string>();
  const hasLinks = [...rootfs.files.values()].some((f) => f.type === 'symlink');
  for (const p of listed) {
    owned.add(p);
    if (hasLinks) owned.add(resolveDirs(rootfs, p));
  }
  return owned;
}

function keepForSbom(licenses: boolean) {
  return (p: string): boolean =>
    p === DPKG_STATUS ||
    (p.startsWith(DPKG_STATUS_D) && !p.endsWith('.md5sums')) ||
    (p.startsWith(DPKG_INFO) && p.endsWith('.list')) ||
    p === APK_DB ||
    OS_RELEASE.includes(p) ||
    (licenses && COPYRIGHT.test(p));
}

// ---------------------------------------------------------------------------------------------
// The document.

/** RFC 3339 UTC without fractions, as SPDX wants (`2024-01-02T03:04:05Z`). */
export function spdxTime(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new SbomError('invalid creation time');
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** $SOURCE_DATE_EPOCH as an SPDX time, or undefined when unset. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new SbomError(`SOURCE_DATE_EPOCH='${v}' is not a number of seconds`);
  return spdxTime(new Date(Number(v) * 1000));
}

function creationTime(opts: SbomOptions, configCreated: unknown): string {
  if (opts.created !== undefined) {
    return spdxTime(typeof opts.created === 'string' ? new Date(opts.created) : opts.created);
  }
  const epoch = sourceDateEpoch(opts.env);
  if (epoch) return epoch;
  if (typeof configCreated === 'string') {
    const d = new Date(configCreated);
    if (!Number.isNaN(d.getTime())) return spdxTime(d);
  }
  return '1970-01-01T00:00:00Z';
}

/** The SPDX id stele gives an image (package image or OS image) with this manifest digest. */
export function imageSpdxId(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `SPDXRef-Image-${algorithm}-${hex.slice(0, 16)}`;
}

/** `pkg:oci/NAME@DIGEST?arch=…&repository_url=…&tag=…`. */
export function ociPurl(repository: string, digest: string, tag?: string, arch?: string): string {
  const name = repository.slice(repository.lastIndexOf('/') + 1).toLowerCase();
  return `pkg:oci/${purlPart(name)}@${purlPart(digest)}${purlQualifiers({ arch, repository_url: repository, tag })}`;
}

export function serializeSbom(doc: SpdxDocument): Buffer {
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`);
}

function byKey<T>(key: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const x = key(a);
    const y = key(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}

export const sortRelationships = byKey<SpdxRelationship>(
  (r) => `${r.spdxElementId}\0${r.relationshipType}\0${r.relatedSpdxElement}`,
);

/**
 * The SBOM of one image manifest in `src` (store or registry): see the module header for what
 * it lists and how it stays deterministic.
 */
export async function generateSbom(
  src: Source,
  image: Descriptor,
  subject: SbomSubject,
  opts: SbomOptions = {},
): Promise<SbomResult> {
  const m = parseManifest(await src.fetchManifest(image), image.mediaType);
  if (m.kind !== 'manifest') {
    throw new SbomError(`${image.digest} is an index: an SBOM describes one image (pick a platform first)`);
  }
  const manifest: ImageManifest = m.manifest;
  let config: { created?: unknown; architecture?: string; os?: string; variant?: string } = {};
  try {
    const chunks: Buffer[] = [];
    for await (const c of await src.fetchBlob(manifest.config)) chunks.push(c as Buffer);
    config = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new SbomError(`reading the config of ${image.digest}: ${(err as Error).message}`);
  }
  const licenses = opts.licenses ?? true;
  const maxFiles = opts.maxFiles ?? 1000;
  const rootfs = await readRootfs(src, manifest.layers, { keep: keepForSbom(licenses), hash: maxFiles > 0 });
  const os = parseOsRelease(
    (rootfs.contents.get('etc/os-release') ?? rootfs.contents.get('usr/lib/os-release'))?.toString('utf8'),
  );

  const found = [...dpkgPackages(rootfs, os, licenses), ...apkPackages(rootfs, os)];
  // One entry per purl (status and status.d may both list a package).
  const byPurl = new Map<string, SpdxPackage>();
  for (const f of found) if (!byPurl.has(f.purl)) byPurl.set(f.purl, f.pkg);
  const packages = [...byPurl.values()].sort(byKey((p) => `${p.name}\0${p.versionInfo ?? ''}\0${p.SPDXID}`));

  const owned = ownedPaths(rootfs);
  const unowned = [...rootfs.files.values()]
    .filter((f) => f.type === 'file' && !owned.has(f.path) && !DB_DIRS.some((d) => f.path.startsWith(d)))
    .sort(byKey((f) => f.path));
  const listed = maxFiles > 0 ? unowned.slice(0, maxFiles) : [];
  const omitted = unowned.length - listed.length;
  const files: SpdxFile[] = listed.map((f) => ({
    fileName: `./${f.path}`,
    SPDXID: `SPDXRef-File-${sha256hex(`${f.path}\0${f.sha256}`).slice(0, 16)}`,
    checksums: [
      { algorithm: 'SHA1', checksumValue: f.sha1 as string },
      { algorithm: 'SHA256', checksumValue: f.sha256 as string },
    ],
  }));

  const platform: Platform = subject.platform ?? {
    os: config.os ?? 'linux',
    architecture: config.architecture ?? 'unknown',
    ...(config.variant ? { variant: config.variant } : {}),
  };
  const { algorithm, hex } = parseDigest(image.digest);
  const imageId = imageSpdxId(image.digest);
  const imagePkg: SpdxPackage = {
    name: subject.name,
    SPDXID: imageId,
    versionInfo: subject.version,
    downloadLocation: NOASSERTION,
    filesAnalyzed: false,
    licenseConcluded: NOASSERTION,
    licenseDeclared: NOASSERTION,
    copyrightText: NOASSERTION,
    checksums: [{ algorithm: algorithm.toUpperCase(), checksumValue: hex }],
    externalRefs: [
      {
        referenceCategory: 'PACKAGE-MANAGER',
        referenceType: 'purl',
        referenceLocator: ociPurl(subject.name, image.digest, subject.version, platform.architecture),
      },
    ],
    primaryPackagePurpose: 'CONTAINER',
    comment: `OCI image manifest ${image.digest} for ${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`,
  };

  const relationships: SpdxRelationship[] = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId },
    ...packages.map((p) => ({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: p.SPDXID })),
    ...files.map((f) => ({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: f.SPDXID })),
  ].sort(sortRelationships);

  const base = (opts.namespaceBase ?? 'https://stele.invalid/spdx').replace(/\/+$/, '');
  const osName = os.PRETTY_NAME ?? (os.ID ? `${os.ID} ${os.VERSION_ID ?? ''}`.trim() : undefined);
  const notes = [
    osName ? `Operating system: ${osName}.` : undefined,
    omitted ? `${omitted} more files no package owns are not listed (limit ${maxFiles}).` : undefined,
  ].filter(Boolean);
  const document: SpdxDocument = {
    spdxVersion: SPDX_VERSION,
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${subject.name}:${subject.version}`,
    documentNamespace: `${base}/${subject.name}/${algorithm}-${hex}`,
    creationInfo: { creators: [STELE_CREATOR], created: creationTime(opts, config.created) },
    ...(notes.length ? { comment: notes.join(' ') } : {}),
    packages: [imagePkg, ...packages],
    ...(files.length ? { files } : {}),
    relationships,
  };
  const problems = checkSpdx(document);
  if (problems.length) throw new SbomError(`generated an invalid SPDX document:\n  ${problems.join('\n  ')}`);
  return {
    document,
    bytes: serializeSbom(document),
    packages: packages.length,
    files: files.length,
    filesOmitted: omitted,
  };
}

// ---------------------------------------------------------------------------------------------
// Validation against the SPDX 2.3 required fields.

const RELATIONSHIP_TYPES = new Set(
  (
    'DESCRIBES DESCRIBED_BY CONTAINS CONTAINED_BY DEPENDS_ON DEPENDENCY_OF DEPENDENCY_MANIFEST_OF ' +
    'BUILD_DEPENDENCY_OF DEV_DEPENDENCY_OF OPTIONAL_DEPENDENCY_OF PROVIDED_DEPENDENCY_OF TEST_DEPENDENCY_OF ' +
    'RUNTIME_DEPENDENCY_OF EXAMPLE_OF GENERATES GENERATED_FROM ANCESTOR_OF DESCENDANT_OF VARIANT_OF ' +
    'DISTRIBUTION_ARTIFACT PATCH_FOR PATCH_APPLIED COPY_OF FILE_ADDED FILE_DELETED FILE_MODIFIED EXPANDED_FROM_ARCHIVE ' +
    'DYNAMIC_LINK STATIC_LINK DATA_FILE_OF TEST_CASE_OF BUILD_TOOL_OF DEV_TOOL_OF TEST_OF TEST_TOOL_OF ' +
    'DOCUMENTATION_OF OPTIONAL_COMPONENT_OF METAFILE_OF PACKAGE_OF AMENDS PREREQUISITE_FOR HAS_PREREQUISITE ' +
    'REQUIREMENT_DESCRIPTION_FOR SPECIFICATION_FOR OTHER'
  ).split(' '),
);
const SPDX_ID = /^SPDXRef-[A-Za-z0-9.-]+$/;

/**
 * Problems with `doc` as an SPDX 2.3 JSON document (empty when fine): the required document
 * fields, packages' SPDXID/name/downloadLocation, files' SPDXID/fileName/SHA-1, relationships
 * between known elements, and something DESCRIBED.
 */
export function checkSpdx(doc: unknown): string[] {
  const p: string[] = [];
  const d = doc as Partial<SpdxDocument> | null;
  if (!d || typeof d !== 'object') return ['not a JSON object'];
  if (d.spdxVersion !== SPDX_VERSION) p.push(`spdxVersion is ${JSON.stringify(d.spdxVersion)}, want "SPDX-2.3"`);
  if (d.dataLicense !== 'CC0-1.0') p.push('dataLicense must be "CC0-1.0"');
  if (d.SPDXID !== 'SPDXRef-DOCUMENT') p.push('SPDXID must be "SPDXRef-DOCUMENT"');
  if (typeof d.name !== 'string' || !d.name) p.push('name: missing');
  if (typeof d.documentNamespace !== 'string' || !/^[a-z][a-z0-9+.-]*:[^#\s]+$/i.test(d.documentNamespace)) {
    p.push('documentNamespace: not an absolute URI without "#"');
  }
  const ci = d.creationInfo;
  if (!ci || typeof ci !== 'object') p.push('creationInfo: missing');
  else {
    if (typeof ci.created !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(ci.created)) {
      p.push('creationInfo.created: not YYYY-MM-DDThh:mm:ssZ');
    }
    if (!Array.isArray(ci.creators) || !ci.creators.length) p.push('creationInfo.creators: empty');
    else
      ci.creators.forEach((c, i) => {
        if (typeof c !== 'string' || !/^(Tool|Organization|Person): \S/.test(c)) {
          p.push(`creationInfo.creators[${i}]: want "Tool: …", "Organization: …" or "Person: …"`);
        }
      });
  }
  const ids = new Set<string>(['SPDXRef-DOCUMENT']);
  const addId = (id: unknown, where: string) => {
    if (typeof id !== 'string' || !SPDX_ID.test(id)) p.push(`${where}.SPDXID: not SPDXRef-[A-Za-z0-9.-]+`);
    else if (ids.has(id)) p.push(`${where}.SPDXID: ${id} used twice`);
    else ids.add(id);
  };
  if (!Array.isArray(d.packages)) p.push('packages: missing');
  else
    d.packages.forEach((pk, i) => {
      addId(pk?.SPDXID, `packages[${i}]`);
      if (typeof pk?.name !== 'string' || !pk.name) p.push(`packages[${i}].name: missing`);
      if (typeof pk?.downloadLocation !== 'string' || !pk.downloadLocation) {
        p.push(`packages[${i}].downloadLocation: missing`);
      }
    });
  if (d.files !== undefined) {
    if (!Array.isArray(d.files)) p.push('files: not an array');
    else
      d.files.forEach((f, i) => {
        addId(f?.SPDXID, `files[${i}]`);
        if (typeof f?.fileName !== 'string' || !f.fileName) p.push(`files[${i}].fileName: missing`);
        if (!Array.isArray(f?.checksums) || !f.checksums.some((c) => c.algorithm === 'SHA1')) {
          p.push(`files[${i}].checksums: no SHA1`);
        }
      });
  }
  if (!Array.isArray(d.relationships)) p.push('relationships: missing');
  else {
    const known = (id: string) => ids.has(id) || id === 'NONE' || id === 'NOASSERTION' || id.startsWith('DocumentRef-');
    d.relationships.forEach((r, i) => {
      if (!RELATIONSHIP_TYPES.has(r?.relationshipType)) {
        p.push(`relationships[${i}].relationshipType: unknown ${JSON.stringify(r?.relationshipType)}`);
      }
      if (typeof r?.spdxElementId !== 'string' || !known(r.spdxElementId)) {
        p.push(`relationships[${i}].spdxElementId: no element ${JSON.stringify(r?.spdxElementId)}`);
      }
      if (typeof r?.relatedSpdxElement !== 'string' || !known(r.relatedSpdxElement)) {
        p.push(`relationships[${i}].relatedSpdxElement: no element ${JSON.stringify(r?.relatedSpdxElement)}`);
      }
    });
    const describes = d.relationships.some(
      (r) => r?.spdxElementId === 'SPDXRef-DOCUMENT' && r.relationshipType === 'DESCRIBES',
    );
    if (!describes) p.push('relationships: the document DESCRIBES nothing');
  }
  return p;
}
