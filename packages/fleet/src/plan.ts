// The blue-green plan: from the hosts a fleet has to `hosts` hosts of the target image, in
// batches. A batch starts up to `maxSurge` new hosts above `hosts`, waits until they pass every
// health check, lets them bake, then retires as many old hosts as `minHealthy` allows. Pure: the
// same state and settings always give the same plan.
import type { FleetState, HostRecord, Step } from './types.ts';

export interface PlanSettings {
  fleet: string;
  /** Hosts the fleet has when no rollout runs. */
  hosts: number;
  /** New hosts at once above `hosts` (resolved from a percentage already). */
  maxSurge: number;
  /** Healthy hosts that must remain while old ones go. */
  minHealthy: number;
  bakeSeconds: number;
}

export interface Plan {
  fleet: string;
  generation: number;
  /** Image identities the live hosts run now. */
  from: string[];
  to: string;
  steps: Step[];
  /** Hosts the plan starts, and the live hosts it retires. */
  creates: string[];
  retires: string[];
  /** Hosts removed first: lost (the provider no longer has them), half-made or half-removed by an earlier run. */
  cleanup: string[];
  /** Hosts the provider holds for this fleet that the state does not know (not touched; `stele fleet prune` removes them). */
  leaked: string[];
}

/** What the provider holds, compared with the state (see refresh.ts). */
export interface World {
  /** Hosts of the state that the provider no longer has. */
  lost: string[];
  /** Hosts the provider has for this fleet that the state does not record. */
  leaked: string[];
  /** The highest generation among the provider's hosts (0: none): names are never reused. */
  maxGeneration: number;
}

export const UNKNOWN_WORLD: World = { lost: [], leaked: [], maxGeneration: 0 };

export class PlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanError';
  }
}

/** Host names of a rollout: `<fleet>-<generation>-<n>`. */
export function hostName(fleet: string, generation: number, n: number): string {
  return `${fleet}-${generation}-${n}`;
}

/** The generation in a host name of `fleet`, or undefined when it is not one. */
export function generationOf(fleet: string, name: string): number | undefined {
  if (!name.startsWith(`${fleet}-`)) return undefined;
  const m = /^(\d+)-(\d+)$/.exec(name.slice(fleet.length + 1));
  return m ? Number(m[1]) : undefined;
}

export function planRollout(
  settings: PlanSettings,
  state: FleetState,
  target: string,
  world: World = UNKNOWN_WORLD,
): Plan {
  const { fleet, hosts: want, maxSurge, minHealthy, bakeSeconds } = settings;
  const r = state.rollout;
  if (r?.phase === 'running') {
    throw new PlanError(
      `a rollout to ${shortImage(r.target)} (generation ${r.generation}) is in progress: ` +
        "resume it with 'stele fleet rollout' or undo it with 'stele fleet rollback'",
    );
  }
  if (r?.phase === 'stopped') {
    throw new PlanError(
      `the rollout to ${shortImage(r.target)} (generation ${r.generation}) stopped${r.reason ? ` (${r.reason})` : ''}: ` +
        "undo it with 'stele fleet rollback', or retry it with 'stele fleet rollout --resume'",
    );
  }
  if (minHealthy > want) throw new PlanError(`minHealthy (${minHealthy}) is more than hosts (${want})`);
  const lost = new Set(world.lost);
  // Only hosts that passed their checks and still exist count; the rest are cleaned up first.
  const live = state.hosts.filter((h) => h.status === 'live' && !lost.has(h.name));
  const cleanup = state.hosts.filter((h) => !live.includes(h)).map((h) => h.name);
  const generation = Math.max(state.generation, world.maxGeneration, ...state.hosts.map((h) => h.generation)) + 1;
  const current = live.filter((h) => h.image === target);
  // Old hosts go oldest first; surplus hosts of the target image go last, oldest first.
  const old: HostRecord[] = live.filter((h) => h.image !== target);
  let toCreate = Math.max(0, want - current.length);
  let count = live.length;
  let n = 0;
  const steps: Step[] = cleanup.length ? [{ kind: 'retire', hosts: cleanup }] : [];
  const creates: string[] = [];
  const retires: string[] = [];
  const retire = (k: number, from: HostRecord[]) => {
    const gone = from.splice(0, k).map((h) => h.name);
    if (gone.length) {
      steps.push({ kind: 'retire', hosts: gone });
      retires.push(...gone);
      count -= gone.length;
    }
  };

  while (toCreate > 0 || old.length > 0) {
    const batch = Math.min(toCreate, Math.max(0, want + maxSurge - count));
    if (batch > 0) {
      const names = Array.from({ length: batch }, () => hostName(fleet, generation, ++n));
      steps.push({ kind: 'create', hosts: names }, { kind: 'await-healthy', hosts: names });
      if (bakeSeconds > 0 && old.length > 0) steps.push({ kind: 'bake', hosts: names, seconds: bakeSeconds });
      creates.push(...names);
      count += batch;
      toCreate -= batch;
    }
    // As many old hosts as minHealthy allows go now (with minHealthy = hosts: one per new host).
    const r = Math.max(0, Math.min(old.length, count - minHealthy));
    if (r > 0) retire(r, old);
    else if (batch === 0) {
      throw new PlanError(
        `no progress possible: maxSurge ${maxSurge} and minHealthy ${minHealthy} with ${count} live hosts`,
      );
    }
  }
  // More hosts of the target image than wanted (the fleet shrank): retire the oldest extras.
  const extra = current.slice(0, Math.max(0, current.length - want));
  retire(extra.length, extra);
  return {
    fleet,
    generation,
    from: [...new Set(live.map((h) => h.image))],
    to: target,
    steps,
    creates,
    retires,
    cleanup,
    leaked: [...world.leaked],
  };
}

/** An image identity as people read it: its first 12 hex digits. */
export function shortImage(image: string): string {
  return image.replace(/^sha256:/, '').slice(0, 12);
}

/** The plan as lines of text, for a terminal. */
export function formatPlan(plan: Plan): string {
  const notes = plan.leaked.length
    ? [
        `  note: ${plan.leaked.length} host(s) of this fleet that the state does not know: ${plan.leaked.join(', ')} ` +
          "(not counted, not touched; 'stele fleet prune' removes them)",
      ]
    : [];
  if (!plan.steps.length) {
    return [`${plan.fleet}: nothing to do (every host runs ${shortImage(plan.to)})`, ...notes, ''].join('\n');
  }
  const from = plan.from.length ? plan.from.map(shortImage).join(', ') : 'no hosts';
  const lines = [
    `${plan.fleet}: ${from} → ${shortImage(plan.to)} (generation ${plan.generation}); ` +
      `${plan.creates.length} new host(s), ${plan.retires.length} retired` +
      (plan.cleanup.length ? `, ${plan.cleanup.length} cleaned up` : ''),
  ];
  const cleanup = new Set(plan.cleanup);
  for (const [i, s] of plan.steps.entries()) {
    const what =
      s.kind === 'create'
        ? `start ${s.hosts.join(', ')}`
        : s.kind === 'await-healthy'
          ? `wait until ${s.hosts.join(', ')} pass every health check`
          : s.kind === 'bake'
            ? `bake ${s.seconds} s: ${s.hosts.join(', ')} must stay healthy`
            : s.hosts.every((h) => cleanup.has(h))
              ? `clean up ${s.hosts.join(', ')} (lost, or left half-made or half-removed by an earlier run)`
              : `drain, destroy and remove ${s.hosts.join(', ')}`;
    lines.push(`  ${String(i + 1).padStart(2)}. ${what}`);
  }
  return `${[...lines, ...notes].join('\n')}\n`;
}
