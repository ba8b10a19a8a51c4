/**
 * Just enough of a Dockerfile reader to order package builds and to give Nx its dependency
 * edges: which images it uses — `FROM`, `COPY --from=` and `RUN --mount=…,from=` — with build
 * args substituted and earlier stages (by name or index) left out, and whether any step RUNs a
 * program (which decides if a foreign arch can build without emulation). Handles line
 * continuations (and the `# escape=` directive), comments, `ARG` defaults before the first
 * `FROM` and flags such as `--platform=`. Not a full parser. The one Dockerfile reader of Stele:
 * the Nx plugin imports it as `@stele/pkg/dockerfile`, so this module imports nothing.
 */

export interface ImageUse {
  /** The image reference as written, after `$ARG` substitution. */
  image: string;
  /** 1-based line of the instruction. */
  line: number;
  kind: 'FROM' | 'COPY --from' | 'RUN --mount from';
}

export interface DockerfileInfo {
  images: ImageUse[];
  hasRun: boolean;
}

interface Instruction {
  keyword: string;
  rest: string;
  line: number;
}

function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let escapeChar = '\\';
  let sawInstruction = false;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string;
    const trimmed = raw.trim();
    if (!sawInstruction) {
      const directive = /^#\s*escape\s*=\s*(\S)/i.exec(trimmed);
      if (directive?.[1]) escapeChar = directive[1];
    }
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    sawInstruction = true;
    const start = i;
    let body = trimmed;
    while (body.endsWith(escapeChar) && i + 1 < lines.length) {
      body = body.slice(0, -1);
      i++;
      const next = (lines[i] as string).trim();
      if (next.startsWith('#')) continue;
      body += ` ${next}`;
    }
    const m = /^(\S+)\s*(.*)$/.exec(body);
    if (m) out.push({ keyword: (m[1] as string).toUpperCase(), rest: (m[2] as string).trim(), line: start + 1 });
  }
  return out;
}

/** Substitutes `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME:+alt}`. */
export function substitute(s: string, vars: Record<string, string | undefined>): string {
  return s.replace(
    /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_m, braced, op, word, bare) => {
      const name = (braced ?? bare) as string;
      const v = vars[name];
      if (op === '-') return v === undefined || v === '' ? (word as string) : v;
      if (op === '+') return v === undefined || v === '' ? '' : (word as string);
      return v ?? '';
    },
  );
}

function unquote(s: string): string {
  return s.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
}

function flags(rest: string): { flags: Record<string, string>; args: string[] } {
  const parts = rest.split(/\s+/).filter(Boolean);
  const out: Record<string, string> = {};
  const args: string[] = [];
  for (const p of parts) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(p);
    if (m && args.length === 0) out[m[1] as string] = m[2] ?? 'true';
    else args.push(p);
  }
  return { flags: out, args };
}

/** Reads the images a Dockerfile uses; `buildArgs` override `ARG` defaults before the first FROM. */
export function readDockerfile(text: string, buildArgs: Record<string, string> = {}): DockerfileInfo {
  const images: ImageUse[] = [];
  // Earlier stages by `AS` name (lower-cased); a `--from` naming one, or a stage index, is no image.
  const stages = new Set<string>();
  const isStage = (name: string) => stages.has(name.toLowerCase()) || /^\d+$/.test(name);
  let seenFrom = false;
  const globalArgs: Record<string, string | undefined> = {};
  const expand = (s: string) => substitute(s, { ...buildArgs, ...globalArgs });
  let hasRun = false;
  for (const ins of instructions(text)) {
    switch (ins.keyword) {
      case 'ARG': {
        if (seenFrom) break;
        for (const a of ins.rest.split(/\s+/).filter(Boolean)) {
          const eq = a.indexOf('=');
          const name = eq < 0 ? a : a.slice(0, eq);
          const def = eq < 0 ? undefined : unquote(a.slice(eq + 1));
          globalArgs[name] = buildArgs[name] ?? def;
        }
        break;
      }
      case 'FROM': {
        const { args } = flags(ins.rest);
        const image = expand(args[0] ?? '');
        if (image && image !== 'scratch' && !stages.has(image.toLowerCase())) {
          images.push({ image, line: ins.line, kind: 'FROM' });
        }
        const as = args[1]?.toUpperCase() === 'AS' ? args[2] : undefined;
        if (as) stages.add(as.toLowerCase());
        seenFrom = true;
        break;
      }
      case 'COPY': {
        const from = flags(ins.rest).flags.from;
        const image = from === undefined ? '' : expand(from);
        if (image && !isStage(image)) images.push({ image, line: ins.line, kind: 'COPY --from' });
        break;
      }
      case 'RUN': {
        hasRun = true;
        for (const m of ins.rest.matchAll(/--mount=\S*\bfrom=([^,\s]+)/g)) {
          const image = expand(m[1] as string);
          if (!isStage(image)) images.push({ image, line: ins.line, kind: 'RUN --mount from' });
        }
        break;
      }
    }
  }
  return { images, hasRun };
}
