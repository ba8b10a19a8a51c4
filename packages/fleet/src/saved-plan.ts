// A plan saved to a file (`stele fleet plan --out plan.json`) to be applied later, exactly as it
// was reviewed (`stele fleet rollout --plan plan.json`). It records what it was made from — the
// state's lineage and write count, the image identity, the fleet's settings — and is refused,
// naming what moved, when any of them has changed since.
import { z } from 'zod';
import { type Plan, PlanError, type PlanSettings, shortImage } from './plan.ts';
import type { FleetState } from './types.ts';

export interface SavedPlan {
  kind: 'stele-fleet-plan';
  version: 1;
  fleet: string;
  createdAt: string;
  /** The state the plan was made from: its lineage and how many writes it had seen. */
  state: { lineage: string; serial: number };
  /** The image identity the plan rolls to. */
  image: string;
  settings: PlanSettings;
  plan: Plan;
}

const names = z.array(z.string());
const planSchema = z.object({
  fleet: z.string(),
  generation: z.number().int().min(1),
  from: names,
  to: z.string(),
  steps: z.array(
    z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('create'), hosts: names }),
      z.object({ kind: z.literal('await-healthy'), hosts: names }),
      z.object({ kind: z.literal('bake'), hosts: names, seconds: z.number().int().min(0) }),
      z.object({ kind: z.literal('retire'), hosts: names }),
    ]),
  ),
  creates: names,
  retires: names,
  cleanup: names,
  leaked: names,
});

const savedSchema = z.object({
  kind: z.literal('stele-fleet-plan'),
  version: z.literal(1),
  fleet: z.string(),
  createdAt: z.string(),
  state: z.object({ lineage: z.string(), serial: z.number().int().min(0) }),
  image: z.string(),
  settings: z.object({
    fleet: z.string(),
    hosts: z.number().int(),
    maxSurge: z.number().int(),
    minHealthy: z.number().int(),
    bakeSeconds: z.number().int(),
  }),
  plan: planSchema,
});

export function savedPlan(plan: Plan, state: FleetState, settings: PlanSettings, now = Date.now()): SavedPlan {
  return {
    kind: 'stele-fleet-plan',
    version: 1,
    fleet: plan.fleet,
    createdAt: new Date(now).toISOString(),
    state: { lineage: state.lineage, serial: state.serial },
    image: plan.to,
    settings,
    plan,
  };
}

/** A saved plan read back, or a PlanError naming the file and what is wrong with it. */
export function parseSavedPlan(text: string, file: string): SavedPlan {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new PlanError(`${file} is not a saved plan (not JSON): write one with 'stele fleet plan --out ${file}'`);
  }
  const r = savedSchema.safeParse(data);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new PlanError(
      `${file} is not a saved plan of this Stele: ${first?.path.join('.') || '(top level)'}: ${first?.message}`,
    );
  }
  return r.data as SavedPlan;
}

/** What changed since the plan was saved (nothing: it may be applied as it is). */
export function checkSavedPlan(
  saved: SavedPlan,
  now: { state: FleetState; image: string; settings: PlanSettings },
): string[] {
  const changed: string[] = [];
  if (saved.fleet !== now.settings.fleet)
    changed.push(`it is a plan of fleet '${saved.fleet}', not '${now.settings.fleet}'`);
  if (saved.state.lineage === '' && now.state.lineage !== '') {
    changed.push(`the state was written ${now.state.serial} time(s) since (it was empty when the plan was made)`);
  } else if (saved.state.lineage !== now.state.lineage) {
    changed.push('the state was replaced by another one (its lineage differs)');
  } else if (saved.state.serial !== now.state.serial) {
    changed.push(
      `the state was written ${now.state.serial - saved.state.serial} time(s) since (write ${saved.state.serial} → ${now.state.serial})`,
    );
  }
  if (saved.image !== now.image) {
    changed.push(`the image is now ${shortImage(now.image)}, the plan rolls to ${shortImage(saved.image)}`);
  }
  for (const key of ['hosts', 'maxSurge', 'minHealthy', 'bakeSeconds'] as const) {
    if (saved.settings[key] !== now.settings[key]) {
      changed.push(
        `${key} is now ${now.settings[key]} in the fleet.yml, the plan was made with ${saved.settings[key]}`,
      );
    }
  }
  return changed;
}
