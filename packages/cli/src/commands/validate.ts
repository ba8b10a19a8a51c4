import { resolve } from 'node:path';
import {
  countErrors,
  detectKind,
  escapeControl,
  formatError,
  KINDS,
  type Kind,
  type ManifestError,
  parseKind,
  readManifestFile,
} from '@stele/manifest';
import { type Command, UsageError } from '../cli.ts';

interface FileResult {
  file: string;
  kind?: Kind;
  errors: ManifestError[];
}

async function check(file: string, cwd: string, forced: Kind | undefined): Promise<FileResult> {
  const read = await readManifestFile(resolve(cwd, file), file);
  if (!read.ok) return { file, errors: read.errors };
  const { text } = read;
  const kind = forced ?? detectKind(file, text);
  const result = parseKind(kind, text, file);
  return { file, kind, errors: result.ok ? [] : result.errors };
}

export const validate: Command = {
  name: 'validate',
  summary: 'check OS manifests, build.yml and fleet.yml files; print every error with its line',
  usage: '[--kind os|pkg|fleet] [--json] FILE...',
  examples: [
    'stele validate fleets/swarm-worker/os.yml',
    'stele validate pkg/*/build.yml fleets/*/*/fleet.yml',
    'stele validate --kind os --json examples/*.yml',
  ],
  options: {
    kind: {
      type: 'string',
      placeholder: 'KIND',
      description: 'read every FILE as os, pkg or fleet (default: from the file name, then the content)',
    },
    json: { type: 'boolean', description: 'print the errors as a JSON list' },
  },
  positionals: { min: 1, max: Number.POSITIVE_INFINITY },
  async run({ io, values, positionals }) {
    const kindFlag = values.kind;
    if (kindFlag !== undefined && (typeof kindFlag !== 'string' || !KINDS.includes(kindFlag as Kind))) {
      throw new UsageError(`stele validate: --kind must be one of ${KINDS.join(', ')}; got '${String(kindFlag)}'`);
    }
    const forced = kindFlag as Kind | undefined;
    const results: FileResult[] = [];
    for (const file of positionals) results.push(await check(file, io.cwd, forced));
    const errors = results.flatMap((r) => r.errors);

    if (values.json) {
      // Escaped as \uXXXX, which JSON reads back as the same characters.
      io.stdout.write(`${escapeControl(JSON.stringify(errors, null, 2), { keepNewlines: true })}\n`);
    } else {
      for (const e of errors) io.stdout.write(`${formatError(e)}\n`);
      const failed = results.filter((r) => r.errors.length > 0).length;
      if (failed === 0) {
        const counts = KINDS.map((k) => [k, results.filter((r) => r.kind === k).length] as const)
          .filter(([, n]) => n > 0)
          .map(([k, n]) => `${n} ${k}`)
          .join(', ');
        io.stderr.write(`${results.length} file${results.length === 1 ? '' : 's'} valid (${counts})\n`);
      } else {
        const count = countErrors(errors);
        io.stderr.write(
          `${count} error${count === 1 ? '' : 's'} in ${failed} of ${results.length} file${results.length === 1 ? '' : 's'}\n`,
        );
      }
    }
    return errors.length === 0 ? 0 : 1;
  },
};
