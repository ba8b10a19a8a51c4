/**
 * BuildKit progress through the Engine API: each `{"id":"moby.buildkit.trace","aux":"<base64>"}`
 * line carries a protobuf `moby.buildkit.v1.StatusResponse`. Only the fields progress output
 * needs are decoded here (vertex digest/name/cached/completed/error and logs), with a small
 * reader of the protobuf wire format.
 */

export interface TraceVertex {
  digest: string;
  name: string;
  cached: boolean;
  started: boolean;
  completed: boolean;
  error: string;
}

export interface TraceLog {
  vertex: string;
  msg: Buffer;
}

export interface TraceStatus {
  vertexes: TraceVertex[];
  logs: TraceLog[];
}

type Field = { no: number; wire: number; value: bigint | Buffer };

function* fields(buf: Buffer): Generator<Field> {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    switch (wire) {
      case 0:
        yield { no, wire, value: varint() };
        break;
      case 1:
        pos += 8;
        yield { no, wire, value: 0n };
        break;
      case 2: {
        const len = Number(varint());
        if (pos + len > buf.length) throw new Error('truncated field');
        yield { no, wire, value: buf.subarray(pos, pos + len) };
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        yield { no, wire, value: 0n };
        break;
      default:
        throw new Error(`unsupported protobuf wire type ${wire}`);
    }
  }
}

const str = (v: bigint | Buffer) => (Buffer.isBuffer(v) ? v.toString('utf8') : '');

function vertex(buf: Buffer): TraceVertex {
  const v: TraceVertex = { digest: '', name: '', cached: false, started: false, completed: false, error: '' };
  for (const f of fields(buf)) {
    if (f.no === 1) v.digest = str(f.value);
    else if (f.no === 3) v.name = str(f.value);
    else if (f.no === 4) v.cached = f.value !== 0n;
    else if (f.no === 5) v.started = true;
    else if (f.no === 6) v.completed = true;
    else if (f.no === 7) v.error = str(f.value);
  }
  return v;
}

function log(buf: Buffer): TraceLog {
  const l: TraceLog = { vertex: '', msg: Buffer.alloc(0) };
  for (const f of fields(buf)) {
    if (f.no === 1) l.vertex = str(f.value);
    else if (f.no === 4 && Buffer.isBuffer(f.value)) l.msg = Buffer.from(f.value);
  }
  return l;
}

/** Decodes the base64 `aux` of a `moby.buildkit.trace` line. */
export function decodeTrace(aux: string): TraceStatus {
  const out: TraceStatus = { vertexes: [], logs: [] };
  for (const f of fields(Buffer.from(aux, 'base64'))) {
    if (!Buffer.isBuffer(f.value)) continue;
    if (f.no === 1) out.vertexes.push(vertex(f.value));
    else if (f.no === 3) out.logs.push(log(f.value));
  }
  return out;
}

/**
 * Turns the trace into lines like `docker build --progress=plain` prints, and remembers each
 * step's output so a failure can show the failing step and the tail of its log.
 */
export class TraceRenderer {
  private readonly names = new Map<string, string>();
  private readonly announced = new Set<string>();
  private readonly done = new Set<string>();
  private readonly output = new Map<string, string[]>();
  private readonly partial = new Map<string, string>();
  /** The first vertex that reported an error. */
  failed: { name: string; error: string; digest: string } | undefined;

  /** Feeds one decoded status; returns the lines to show. */
  feed(status: TraceStatus): string[] {
    const lines: string[] = [];
    for (const v of status.vertexes) {
      if (v.name) this.names.set(v.digest, v.name);
      const name = this.names.get(v.digest) ?? v.digest.slice(7, 19);
      if (v.started && !this.announced.has(v.digest) && !v.cached) {
        this.announced.add(v.digest);
        lines.push(`#${name}`);
      }
      if (v.cached && v.completed && !this.done.has(v.digest)) {
        this.done.add(v.digest);
        lines.push(`#${name} CACHED`);
      }
      if (v.error && !this.failed) {
        this.failed = { name, error: v.error, digest: v.digest };
        lines.push(`#${name} ERROR: ${v.error}`);
      }
    }
    for (const l of status.logs) {
      const text = (this.partial.get(l.vertex) ?? '') + l.msg.toString('utf8');
      const parts = text.split(/\r?\n/);
      this.partial.set(l.vertex, parts.pop() ?? '');
      const kept = this.output.get(l.vertex) ?? [];
      for (const p of parts) {
        kept.push(p);
        lines.push(`  ${p}`);
      }
      if (kept.length > 200) kept.splice(0, kept.length - 200);
      this.output.set(l.vertex, kept);
    }
    return lines.map((l) => (l.startsWith('#') ? l.slice(1) : l));
  }

  /** The last `n` output lines of a step (the failed one by default). */
  tail(n = 20, digest = this.failed?.digest): string[] {
    if (!digest) return [];
    const out = [...(this.output.get(digest) ?? [])];
    const rest = this.partial.get(digest);
    if (rest) out.push(rest);
    return out.slice(-n);
  }
}
