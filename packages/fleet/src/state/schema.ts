// The state file's format, checked on every load: a state that was edited by hand, cut short or
// written by something else is refused with the field that is wrong, never half-used. States in
// the first format (`version: 1`) are migrated on load.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { type FleetState, type RolloutRecord, STATE_VERSION } from '../types.ts';

const text = z.string();
const count = z.number().int().min(0);
const refSchema = z.record(z.string(), z.union([z.string(), z.number()]));

const hostSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,80}$/, { error: 'must be a host name (lowercase letters, digits, -)' }),
  image: text,
  generation: count,
  status: z.enum(['creating', 'pending', 'live', 'retiring']),
  provider: refSchema.optional(),
  address: text.optional(),
  createdAt: text,
  token: text.optional(),
  hostKey: text.optional(),
  error: text.optional(),
});

const stepSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('create'), hosts: z.array(text) }),
  z.object({ kind: z.literal('await-healthy'), hosts: z.array(text) }),
  z.object({ kind: z.literal('bake'), hosts: z.array(text), seconds: count }),
  z.object({ kind: z.literal('retire'), hosts: z.array(text) }),
]);

const phaseSchema = z.enum(['running', 'done', 'rolled-back', 'stopped']);

const summaryFields = {
  generation: count,
  target: text,
  from: z.array(text),
  phase: phaseSchema,
  startedAt: text,
  endedAt: text.optional(),
  reason: text.optional(),
  warnings: z.array(text).optional(),
};

const rolloutSchema = z.object({
  ...summaryFields,
  steps: z.array(stepSchema.and(z.object({ status: z.enum(['pending', 'running', 'done']) }))),
});

export const stateSchema = z.object({
  version: z.literal(STATE_VERSION),
  fleet: text,
  lineage: text,
  serial: count,
  generation: count,
  hosts: z.array(hostSchema),
  images: z.array(z.object({ identity: text, format: text, ref: refSchema, publishedAt: text })),
  rollout: rolloutSchema.optional(),
  history: z.array(z.object(summaryFields)),
});

/** The first format: hosts were `live` as soon as they existed, pins lived in a side file. */
const v1Schema = z.object({
  version: z.literal(1),
  fleet: text,
  generation: count,
  hosts: z.array(
    z.object({
      name: text,
      image: text,
      generation: count,
      status: z.enum(['creating', 'live', 'retiring', 'removed']),
      provider: refSchema.optional(),
      address: text.optional(),
      createdAt: text,
    }),
  ),
  rollout: rolloutSchema.optional(),
  history: z.array(z.object(summaryFields)),
});

export class StateFormatError extends Error {
  override name = 'StateFormatError';
}

/** `path: message` for the first few issues, without the values (a state may hold anything). */
function issues(err: z.ZodError): string {
  const shown = err.issues.slice(0, 5).map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
  const more = err.issues.length > shown.length ? `; … and ${err.issues.length - shown.length} more` : '';
  return shown.join('; ') + more;
}

/** Names of the hosts of `r` that passed every check of their batch. */
export function committedHosts(r: Pick<RolloutRecord, 'steps'>): Set<string> {
  const checked = new Map<string, boolean>();
  for (const s of r.steps) {
    if (s.kind === 'await-healthy' || s.kind === 'bake') {
      for (const n of s.hosts) checked.set(n, (checked.get(n) ?? true) && s.status === 'done');
    }
  }
  return new Set([...checked].filter(([, ok]) => ok).map(([n]) => n));
}

function migrateV1(old: z.infer<typeof v1Schema>): FleetState {
  const r = old.rollout;
  // A rollout that is not over may have hosts that never passed their checks: not live.
  const unchecked =
    r && (r.phase === 'running' || r.phase === 'stopped')
      ? new Set(
          old.hosts.filter((h) => h.generation === r.generation && !committedHosts(r).has(h.name)).map((h) => h.name),
        )
      : new Set<string>();
  return {
    version: STATE_VERSION,
    fleet: old.fleet,
    lineage: randomUUID(),
    serial: 0,
    generation: old.generation,
    hosts: old.hosts
      .filter((h) => h.status !== 'removed')
      .map((h) => ({
        ...h,
        status:
          h.status === 'live' && unchecked.has(h.name)
            ? ('pending' as const)
            : (h.status as 'creating' | 'live' | 'retiring'),
      })),
    images: [],
    ...(r ? { rollout: r } : {}),
    history: old.history,
  };
}

/** Parses a stored state (any known version) into the current format, or says what is wrong. */
export function parseState(raw: string): FleetState {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch (err) {
    // Never echo the text: a state path pointed at the wrong file may hold anything.
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    throw new StateFormatError(`it is not JSON${at ? ` (error at byte ${at})` : ''}`);
  }
  const version = (data as { version?: unknown } | null)?.version;
  if (version === 1) {
    const old = v1Schema.safeParse(data);
    if (!old.success) throw new StateFormatError(`it is not a valid state (version 1): ${issues(old.error)}`);
    return migrateV1(old.data);
  }
  if (version !== STATE_VERSION) {
    throw new StateFormatError(
      typeof version === 'number'
        ? `it has version ${version}, which this Stele does not know (it reads 1 and ${STATE_VERSION}): a newer Stele wrote it?`
        : 'it is not a Stele fleet state (no version)',
    );
  }
  const parsed = stateSchema.safeParse(data);
  if (!parsed.success) throw new StateFormatError(`it is not a valid state: ${issues(parsed.error)}`);
  return parsed.data as FleetState;
}
