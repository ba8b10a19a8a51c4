/**
 * Validates the whole LinuxKit compatibility corpus in one process and prints timings.
 *   pnpm exec tsx bench/validate-corpus.ts [--iterations N]
 * Corpus: ../shared/corpus/linuxkit from the repository root, or $STELE_CORPUS.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { detectKind, parseKind } from '../packages/manifest/src/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const corpus = process.env.STELE_CORPUS ?? resolve(root, '../shared/corpus/linuxkit');
const { values } = parseArgs({ options: { iterations: { type: 'string', default: '20' } } });
const iterations = Math.max(1, Number(values.iterations));

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

// Every YAML file of the corpus: OS manifests, build.yml files, negative cases, the broken example.
const files = walk(corpus)
  .filter((p) => /\.ya?ml$/.test(p))
  .map((p) => ({ file: relative(corpus, p), text: readFileSync(p, 'utf8') }));
const bytes = files.reduce((n, f) => n + Buffer.byteLength(f.text), 0);

function pass(): { valid: number; invalid: number; errors: number } {
  let valid = 0;
  let invalid = 0;
  let errors = 0;
  for (const { file, text } of files) {
    const r = parseKind(detectKind(file, text), text, file);
    if (r.ok) valid++;
    else {
      invalid++;
      errors += r.errors.length;
    }
  }
  return { valid, invalid, errors };
}

const t0 = performance.now();
const first = pass();
const cold = performance.now() - t0;
const times: number[] = [];
for (let i = 0; i < iterations; i++) {
  const s = performance.now();
  pass();
  times.push(performance.now() - s);
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)] as number;
const ms = (n: number) => `${n.toFixed(1)} ms`;

console.log(`corpus: ${files.length} YAML files, ${(bytes / 1024).toFixed(0)} KiB (${corpus})`);
console.log(`result: ${first.valid} valid, ${first.invalid} rejected, ${first.errors} errors`);
console.log(`first pass (cold, includes JIT warm-up): ${ms(cold)}`);
console.log(
  `warm pass over ${iterations} iterations: median ${ms(median)}, min ${ms(times[0] as number)}, max ${ms(times[times.length - 1] as number)}`,
);
console.log(`throughput (warm median): ${Math.round(files.length / (median / 1000))} files/s`);
