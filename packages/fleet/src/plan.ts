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
}

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

export function planRollout(settings: PlanSettings, state: FleetState, target: string): Plan {
  const { fleet, hosts: want, maxSurge, minHealthy, bakeSeconds } = settings;
  if (state.rollout?.phase === 'running') {
    throw new PlanError(
      `a rollout to ${shortImage(state.rollout.target)} (generation ${state.rollout.generation}) is in progress: ` +
        "resume it with 'stele fleet rollout' or undo it with 'stele fleet rollback'",
    );
  }
  if (minHealthy > want) throw new PlanError(`minHealthy (${minHealthy}) is more than hosts (${want})`);
  const live = state.hosts.filter((h) => h.status === 'live');
  const stray = state.hosts.filter((h) => h.status === 'creating' || h.status === 'retiring');
  if (stray.length) {
    throw new PlanError(
      `hosts left half-made or half-removed by an earlier run: ${stray.map((h) => `${h.name} (${h.status})`).join(', ')}: ` +
        "run 'stele fleet rollback' to clean them up",
    );
  }
  const generation = state.generation + 1;
  const current = live.filter((h) => h.image === target);
  // Old hosts go oldest first; surplus hosts of the target image go last, oldest first.
  const old: HostRecord[] = live.filter((h) => h.image !== target);
  let toCreate = Math.max(0, want - current.length);
  let count = live.length;
  let n = 0;
  const steps: Step[] = [];
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
  return { fleet, generation, from: [...new Set(live.map((h) => h.image))], to: target, steps, creates, retires };
}

/** An image identity as people read it: its first 12 hex digits. */
export function shortImage(image: string): string {
  return image.replace(/^sha256:/, '').slice(0, 12);
}

/** The plan as lines of text, for a terminal. */
export function formatPlan(plan: Plan): string {
  if (!plan.steps.length) return `${plan.fleet}: nothing to do (every host runs ${shortImage(plan.to)})\n`;
  const from = plan.from.length ? plan.from.map(shortImage).join(', ') : 'no hosts';
  const lines = [
    `${plan.fleet}: ${from} → ${shortImage(plan.to)} (generation ${plan.generation}); ` +
      `${plan.creates.length} new host(s), ${plan.retires.length} retired`,
  ];
  for (const [i, s] of plan.steps.entries()) {
    const what =
      s.kind === 'create'
        ? `start ${s.hosts.join(', ')}`
        : s.kind === 'await-healthy'
          ? `wait until ${s.hosts.join(', ')} pass every health check`
          : s.kind === 'bake'
            ? `bake ${s.seconds} s: ${s.hosts.join(', ')} must stay healthy`
            : `drain, destroy and remove ${s.hosts.join(', ')}`;
    lines.push(`  ${String(i + 1).padStart(2)}. ${what}`);
  }
  return `${lines.join('\n')}\n`;
}
