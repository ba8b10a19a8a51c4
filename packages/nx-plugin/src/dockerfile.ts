/**
 * The base images a Dockerfile builds `FROM`: enough Dockerfile syntax for dependency edges
 * (line continuations, comments, `ARG` defaults before the first stage, `--platform=` flags,
 * stage names that later stages reuse). Not a full parser.
 */

export interface FromRef {
  ref: string;
  line: number;
}

export function dockerfileFroms(text: string): FromRef[] {
  const args = new Map<string, string>();
  const stages = new Set<string>();
  const out: FromRef[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i] ?? '';
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      line = `${line.replace(/\\\s*$/, ' ')}${lines[i] ?? ''}`;
    }
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const [instr = '', ...rest] = trimmed.split(/\s+/);
    const keyword = instr.toUpperCase();
    if (keyword === 'ARG' && out.length === 0) {
      for (const a of rest) {
        const eq = a.indexOf('=');
        if (eq > 0) args.set(a.slice(0, eq), unquote(a.slice(eq + 1)));
      }
    } else if (keyword === 'FROM') {
      const words = rest.filter((w) => !w.startsWith('--'));
      const image = words[0];
      if (!image) continue;
      const ref = expand(image, args);
      const isStage = stages.has(ref.toLowerCase());
      if (words[1]?.toUpperCase() === 'AS' && words[2]) stages.add(words[2].toLowerCase());
      if (isStage || ref === 'scratch') continue;
      out.push({ ref, line: start + 1 });
    }
  }
  return out;
}

function unquote(s: string): string {
  return s.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
}

function expand(s: string, args: Map<string, string>): string {
  return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a, def, b) => {
    const name = (a ?? b) as string;
    return args.get(name) ?? (def as string | undefined) ?? '';
  });
}
