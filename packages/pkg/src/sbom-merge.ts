/**
 * One SPDX 2.3 document for an OS image out of its package images' SBOMs: the OS image is the
 * described package and CONTAINS each package image (what each input document DESCRIBES);
 * everything the inputs list — packages, files, their relationships — is kept, once.
 *
 * Packages are de-duplicated by SPDXID and by purl (the same Debian package in two images is
 * one package; relationships naming the second id are rewritten to the first), files by SPDXID
 * (which stele derives from path and content). The result is deterministic for the same inputs
 * in any order.
 */
import {
  checkSpdx,
  imageSpdxId,
  SbomError,
  SPDX_VERSION,
  type SpdxDocument,
  type SpdxFile,
  type SpdxPackage,
  type SpdxRelationship,
  STELE_CREATOR,
  serializeSbom,
  sortRelationships,
  sourceDateEpoch,
  spdxIdPart,
  spdxTime,
} from './sbom.ts';

export interface MergeOptions {
  /** The OS image's name, e.g. the manifest's name `swarm-worker`. Also the document name. */
  name: string;
  /** documentNamespace: a unique absolute URI, e.g. `https://stele.invalid/spdx/os/swarm-worker/sha256-<hex of the lock>`. */
  namespace: string;
  /** versionInfo of the OS image package. */
  version?: string;
  /** The OS image artifact's digest (`sha256:…`), when known: its checksum and SPDX id. */
  digest?: string;
  /**
   * `created`: this, else $SOURCE_DATE_EPOCH, else the latest `created` of the inputs — never
   * the clock, so a rebuild gives the same bytes.
   */
  created?: Date | string;
  env?: NodeJS.ProcessEnv;
  /** primaryPackagePurpose of the OS image package (default OPERATING-SYSTEM). */
  purpose?: string;
  comment?: string;
}

function purlOf(p: SpdxPackage): string | undefined {
  return p.externalRefs?.find((r) => r.referenceType === 'purl')?.referenceLocator;
}

function described(doc: SpdxDocument): string[] {
  const ids = doc.relationships
    .filter((r) => r.spdxElementId === 'SPDXRef-DOCUMENT' && r.relationshipType === 'DESCRIBES')
    .map((r) => r.relatedSpdxElement);
  const legacy = (doc as { documentDescribes?: string[] }).documentDescribes ?? [];
  return [...new Set([...ids, ...legacy])];
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Merges package-image SBOMs into the OS image's SBOM (see the module header). Throws an
 * SbomError naming the input when one is not valid SPDX 2.3.
 */
export function mergeSboms(docs: SpdxDocument[], opts: MergeOptions): SpdxDocument {
  docs.forEach((d, i) => {
    const problems = checkSpdx(d);
    if (problems.length) {
      throw new SbomError(
        `SBOM ${i + 1} (${(d as { name?: string })?.name ?? 'unnamed'}) is not valid SPDX 2.3:\n  ${problems.join('\n  ')}`,
      );
    }
  });
  const rootId = opts.digest
    ? imageSpdxId(opts.digest).replace(/^SPDXRef-Image-/, 'SPDXRef-OS-')
    : `SPDXRef-OS-${spdxIdPart(opts.name)}`;

  // Documents in a stable order, so ties (same purl, different ids) resolve the same way.
  const ordered = [...docs].sort((a, b) => cmp(a.documentNamespace, b.documentNamespace));
  const packages = new Map<string, SpdxPackage>();
  const byPurl = new Map<string, string>();
  const files = new Map<string, SpdxFile>();
  const alias = new Map<string, string>();
  const contained = new Set<string>();
  const rels = new Map<string, SpdxRelationship>();

  for (const doc of ordered) {
    for (const p of doc.packages) {
      const purl = purlOf(p);
      const first = purl ? byPurl.get(purl) : undefined;
      if (first && first !== p.SPDXID) {
        alias.set(p.SPDXID, first);
        continue;
      }
      if (!packages.has(p.SPDXID)) packages.set(p.SPDXID, p);
      if (purl) byPurl.set(purl, p.SPDXID);
    }
    for (const f of doc.files ?? []) if (!files.has(f.SPDXID)) files.set(f.SPDXID, f);
  }
  if (packages.has(rootId) || files.has(rootId)) {
    throw new SbomError(`the OS image's SPDX id ${rootId} is already used by one of the package SBOMs`);
  }
  const id = (x: string) => alias.get(x) ?? x;
  for (const doc of ordered) {
    for (const d of described(doc)) contained.add(id(d));
    for (const r of doc.relationships) {
      if (r.spdxElementId === 'SPDXRef-DOCUMENT' || r.relatedSpdxElement === 'SPDXRef-DOCUMENT') continue;
      const rel = {
        spdxElementId: id(r.spdxElementId),
        relationshipType: r.relationshipType,
        relatedSpdxElement: id(r.relatedSpdxElement),
      };
      rels.set(`${rel.spdxElementId}\0${rel.relationshipType}\0${rel.relatedSpdxElement}`, rel);
    }
  }

  const root: SpdxPackage = {
    name: opts.name,
    SPDXID: rootId,
    ...(opts.version ? { versionInfo: opts.version } : {}),
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    ...(opts.digest
      ? {
          checksums: [
            {
              algorithm: (opts.digest.split(':')[0] as string).toUpperCase(),
              checksumValue: opts.digest.split(':')[1] as string,
            },
          ],
        }
      : {}),
    primaryPackagePurpose: opts.purpose ?? 'OPERATING-SYSTEM',
  };
  const relationships: SpdxRelationship[] = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: rootId },
    ...[...contained].map((c) => ({ spdxElementId: rootId, relationshipType: 'CONTAINS', relatedSpdxElement: c })),
    ...rels.values(),
  ].sort(sortRelationships);

  let created: string;
  if (opts.created !== undefined) {
    created = spdxTime(typeof opts.created === 'string' ? new Date(opts.created) : opts.created);
  } else {
    created =
      sourceDateEpoch(opts.env) ??
      docs
        .map((d) => d.creationInfo.created)
        .sort()
        .at(-1) ??
      '1970-01-01T00:00:00Z';
  }
  const sortedPackages = [...packages.values()].sort(
    (a, b) => cmp(a.name, b.name) || cmp(a.versionInfo ?? '', b.versionInfo ?? '') || cmp(a.SPDXID, b.SPDXID),
  );
  const sortedFiles = [...files.values()].sort((a, b) => cmp(a.fileName, b.fileName) || cmp(a.SPDXID, b.SPDXID));
  const doc: SpdxDocument = {
    spdxVersion: SPDX_VERSION,
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: opts.name,
    documentNamespace: opts.namespace,
    creationInfo: { creators: [STELE_CREATOR], created },
    ...(opts.comment ? { comment: opts.comment } : {}),
    packages: [root, ...sortedPackages],
    ...(sortedFiles.length ? { files: sortedFiles } : {}),
    relationships,
  };
  const problems = checkSpdx(doc);
  if (problems.length) throw new SbomError(`merged SBOM is not valid SPDX 2.3:\n  ${problems.join('\n  ')}`);
  return doc;
}

/** mergeSboms, serialized the way `/sbom.spdx.json` is written (two-space JSON, final newline). */
export function mergeSbomsToBytes(docs: SpdxDocument[], opts: MergeOptions): Buffer {
  return serializeSbom(mergeSboms(docs, opts));
}
