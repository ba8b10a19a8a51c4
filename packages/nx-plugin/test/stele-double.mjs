#!/usr/bin/env node
// Test double for `stele pkg build|pkg push|build`, which other issues are still writing.
// It does what the plugin relies on those commands doing: put a blob in the OCI layout store
// ($STELE_CACHE/blobs/sha256/<hex>), write the descriptor to $STELE_DESCRIPTOR, and (for the
// tests) append "<verb> <project>" to $STELE_TEST_LOG so a test can see what really ran.
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const verb = process.argv[2];
const { STELE_PROJECT: project, STELE_FILE: file, STELE_DESCRIPTOR: descriptor, STELE_CACHE: store } = process.env;
if (!verb || !project || !file || !descriptor || !store) {
  console.error('stele-double: missing arguments or environment');
  process.exit(64);
}

function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

// content: the package directory (or the manifest) — deterministic, so a rebuild gives the same digest
const inputs = verb === 'os-build' ? [file] : files(dirname(file)).sort();
const h = createHash('sha256');
for (const f of inputs) h.update(f).update('\0').update(readFileSync(f)).update('\0');
const blob = Buffer.from(JSON.stringify({ project, content: h.digest('hex') }));
const hex = createHash('sha256').update(blob).digest('hex');
mkdirSync(join(store, 'blobs', 'sha256'), { recursive: true });
writeFileSync(join(store, 'blobs', 'sha256', hex), blob);
mkdirSync(dirname(descriptor), { recursive: true });
writeFileSync(
  descriptor,
  `${JSON.stringify({
    digest: `sha256:${hex}`,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    size: blob.length,
    refs: [`${project}:dev`],
  })}\n`,
);
if (process.env.STELE_TEST_LOG) appendFileSync(process.env.STELE_TEST_LOG, `${verb} ${project}\n`);
