/**
 * Property tests: corpus files mutated at random (keys dropped or renamed, values replaced by
 * other types, text truncated, random bytes spliced in) never make a parser throw, and every
 * failure comes back as well-formed, located errors.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type ManifestError, type ParseResult, parseBuildYml, parseFleet, parseOsManifest } from '../src/index.ts';
import { CORPUS, classes, corpusPresent, findNamed, read } from './corpus.ts';

type Parser = (text: string, file: string) => ParseResult<unknown>;
type Path = Array<string | number>;

const RUNS = Number(process.env.STELE_PROPERTY_RUNS ?? 200);

function assertWellFormed(result: ParseResult<unknown>, text: string, file: string): void {
  if (result.ok) {
    expect(result.value).toBeTypeOf('object');
    return;
  }
  expect(result.errors.length).toBeGreaterThan(0);
  const lines = text.split(/\r\n|\r|\n/).length;
  for (const e of result.errors as ManifestError[]) {
    expect(e.file).toBe(file);
    expect(Number.isInteger(e.line) && e.line >= 1 && e.line <= lines + 1).toBe(true);
    expect(Number.isInteger(e.col) && e.col >= 1).toBe(true);
    expect(typeof e.path).toBe('string');
    expect(typeof e.message === 'string' && e.message.length > 0).toBe(true);
  }
}

function run(parser: Parser, text: string): void {
  const file = 'mutant.yml';
  let result: ParseResult<unknown>;
  try {
    result = parser(text, file);
  } catch (err) {
    throw new Error(`parser threw on input ${JSON.stringify(text.slice(0, 300))}: ${String(err)}`);
  }
  assertWellFormed(result, text, file);
}

/** Every path into `data` (to mappings' keys and lists' items). */
function paths(data: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [];
  if (Array.isArray(data)) {
    data.forEach((v, i) => {
      out.push([...prefix, i], ...paths(v, [...prefix, i]));
    });
  } else if (data !== null && typeof data === 'object') {
    for (const [k, v] of Object.entries(data)) out.push([...prefix, k], ...paths(v, [...prefix, k]));
  }
  return out;
}

function parentOf(data: unknown, path: Path): [Record<string | number, unknown>, string | number] {
  let node = data as Record<string | number, unknown>;
  for (const seg of path.slice(0, -1)) node = node[seg] as Record<string | number, unknown>;
  return [node, path[path.length - 1] as string | number];
}

type Mutation = { kind: 'drop' } | { kind: 'rename'; to: string } | { kind: 'replace'; value: unknown };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant<Mutation>({ kind: 'drop' }),
  fc.string({ maxLength: 12 }).map<Mutation>((to) => ({ kind: 'rename', to })),
  fc
    .oneof(
      fc.string({ maxLength: 20 }),
      fc.integer(),
      fc.double({ noNaN: false }),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.oneof(fc.string({ maxLength: 5 }), fc.integer()), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.string({ maxLength: 5 }), fc.integer()), { maxKeys: 3 }),
    )
    .map<Mutation>((value) => ({ kind: 'replace', value })),
);

function mutate(text: string, pick: number, m: Mutation): string {
  const data = parse(text) as unknown;
  const all = paths(data);
  if (all.length === 0) return text;
  const path = all[pick % all.length] as Path;
  const [parent, key] = parentOf(data, path);
  if (m.kind === 'drop') {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
  } else if (m.kind === 'rename' && !Array.isArray(parent)) {
    const value = parent[key];
    delete parent[key];
    parent[m.to] = value;
  } else if (m.kind === 'replace') {
    parent[key] = m.value;
  }
  return stringify(data);
}

const spliceBytes = (text: string, at: number, bytes: Uint8Array, cut: number) => {
  const i = at % (text.length + 1);
  return text.slice(0, i) + Buffer.from(bytes).toString('latin1') + text.slice(Math.min(text.length, i + cut));
};

const fleetSample = [
  'name: lab\nimage: os.yml\nhosts: 2\nprovider: {type: qemu, cpus: 2}\nhealth: [{type: http, port: 80}]\n',
  readFileSync(new URL('../../../fleets/swarm-worker/prod/fleet.yml', import.meta.url), 'utf8'),
];

/** Tests that read the corpus: where it is absent, skipped and saying so in their names. */
const needsCorpus = corpusPresent ? '' : ` (skipped: no LinuxKit corpus at ${CORPUS})`;

describe('mutated files never crash the parsers', () => {
  // Read on first use: where the corpus is absent only the fleet samples are read.
  const sets: Array<[name: string, parser: Parser, texts: () => string[], corpus: boolean]> = [
    ['OS manifests', parseOsManifest, () => classes().os_manifest.map(read), true],
    ['build.yml', parseBuildYml, () => findNamed('pkg', 'build.yml').map(read), true],
    ['fleet.yml', parseFleet, () => fleetSample, false],
  ];

  for (const [name, parser, texts, corpus] of sets) {
    const test = it.runIf(!corpus || corpusPresent);
    const title = (t: string) => `${name}: ${t}${corpus ? needsCorpus : ''}`;

    test(title('structural mutations (drop, rename, retype) give structured results'), () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...texts()),
          fc.nat(),
          fc.array(mutation, { minLength: 1, maxLength: 3 }),
          (t, pick, ms) => {
            let mutated = t;
            ms.forEach((m, i) => {
              mutated = mutate(mutated, pick + i * 7919, m);
            });
            run(parser, mutated);
          },
        ),
        { numRuns: RUNS },
      );
    });

    test(title('truncation gives structured results'), () => {
      fc.assert(
        fc.property(fc.constantFrom(...texts()), fc.nat(), (t, n) => run(parser, t.slice(0, n % (t.length + 1)))),
        { numRuns: RUNS },
      );
    });

    test(title('random bytes spliced in give structured results'), () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...texts()),
          fc.nat(),
          fc.uint8Array({ minLength: 1, maxLength: 16 }),
          fc.nat(8),
          (t, at, b, cut) => run(parser, spliceBytes(t, at, b, cut)),
        ),
        { numRuns: RUNS },
      );
    });
  }

  it('arbitrary text (not from the corpus) gives structured results', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (t) => {
        run(parseOsManifest, t);
        run(parseBuildYml, t);
        run(parseFleet, t);
      }),
      { numRuns: RUNS },
    );
  });

  it.runIf(corpusPresent)(
    `dropping the name or image of any service is always an error located at that entry${needsCorpus}`,
    () => {
      const withServices = classes()
        .os_manifest.map(read)
        .filter((t) => {
          const d = parse(t) as { services?: unknown[] };
          return Array.isArray(d?.services) && d.services.length > 0;
        });
      fc.assert(
        fc.property(fc.constantFrom(...withServices), fc.nat(), fc.constantFrom('name', 'image'), (t, pick, key) => {
          const data = parse(t) as { services: Array<Record<string, unknown>> };
          const i = pick % data.services.length;
          delete (data.services[i] as Record<string, unknown>)[key];
          const r = parseOsManifest(stringify(data), 'm.yml');
          expect(r.ok).toBe(false);
          if (!r.ok) expect(r.errors.map((e) => e.path)).toContain(`services.${i}.${key}`);
        }),
        { numRuns: RUNS },
      );
    },
  );
});
