import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  FileStateStore,
  type FleetState,
  formatPlan,
  PlanError,
  planRollout,
  StateError,
  statePath,
} from '@stele/fleet';
import { BuildError, imageIdentity } from '@stele/image';
import { type Fleet, formatError, parseFleet, resolveCount } from '@stele/manifest';
import { defaultStoreDir, Store } from '@stele/oci';
import { type Command, type Context, UserError } from '../cli.ts';

async function loadFleet(file: string): Promise<Fleet> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const r = parseFleet(text, file);
  if (!r.ok) throw new UserError(r.errors.map(formatError).join('\n'));
  return r.value;
}

async function openState(fleet: Fleet, file: string): Promise<{ store: FileStateStore; state: FleetState }> {
  try {
    const store = new FileStateStore(statePath(fleet, file), fleet.name);
    return { store, state: await store.load() };
  } catch (err) {
    if (err instanceof StateError) throw new UserError(err.message);
    throw err;
  }
}

const COMMON = {
  cache: {
    type: 'string',
    placeholder: 'DIR',
    description: 'local OCI store (default $STELE_CACHE or ~/.cache/stele/oci)',
  },
  json: { type: 'boolean', description: 'print JSON' },
} as const;

const plan: Command = {
  name: 'plan',
  summary: 'show what a rollout of the fleet would do: hosts started, checked, baked and retired',
  usage: '[--offline] [--pkg-org ORG] [--json] FLEET.yml',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele fleet plan fleets/swarm-worker/prod/fleet.yml',
    'stele fleet plan --json fleets/swarm-worker/prod/fleet.yml | jq .steps',
  ],
  options: {
    ...COMMON,
    offline: { type: 'boolean', description: 'never contact a registry: every image must be in the store' },
    'pkg-org': { type: 'string', placeholder: 'ORG', description: "org for @pkg: templates instead of build.yml's" },
  },
  async run(ctx: Context) {
    const { io, values } = ctx;
    const file = resolve(io.cwd, ctx.positionals[0] as string);
    const fleet = await loadFleet(file);
    const { state } = await openState(fleet, file);
    const manifest = resolve(dirname(file), fleet.image);
    const store = await Store.open(resolve(io.cwd, (values.cache as string | undefined) ?? defaultStoreDir(io.env)));
    let target: Awaited<ReturnType<typeof imageIdentity>>;
    try {
      target = await imageIdentity({
        manifest,
        store,
        offline: Boolean(values.offline),
        ...(values['pkg-org'] ? { pkgOrg: values['pkg-org'] as string } : {}),
      });
    } catch (err) {
      if (err instanceof BuildError) throw new UserError(`${fleet.image}: ${err.message}`);
      throw err;
    }
    const s = fleet.strategy;
    let p: ReturnType<typeof planRollout>;
    try {
      p = planRollout(
        {
          fleet: fleet.name,
          hosts: fleet.hosts,
          maxSurge: resolveCount(s.maxSurge, fleet.hosts),
          minHealthy: resolveCount(s.minHealthy, fleet.hosts),
          bakeSeconds: s.bakeSeconds,
        },
        state,
        target.identity,
      );
    } catch (err) {
      if (err instanceof PlanError) throw new UserError(`${fleet.name}: ${err.message}`);
      throw err;
    }
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ ...p, image: { manifest, images: target.plan.images } }, null, 2)}\n`);
    } else {
      io.stdout.write(formatPlan(p));
      io.stdout.write(`  image ${manifest} (${target.plan.images.length} images for ${target.plan.platform})\n`);
    }
    return 0;
  },
};

const status: Command = {
  name: 'status',
  summary: "what the fleet's state records: its hosts, the running or last rollout",
  usage: '[--json] FLEET.yml',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele fleet status fleets/swarm-worker/prod/fleet.yml',
    'stele fleet status --json fleets/swarm-worker/prod/fleet.yml',
  ],
  options: { json: COMMON.json },
  async run(ctx: Context) {
    const { io, values } = ctx;
    const file = resolve(io.cwd, ctx.positionals[0] as string);
    const fleet = await loadFleet(file);
    const { store, state } = await openState(fleet, file);
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ state: store.path, ...state }, null, 2)}\n`);
      return 0;
    }
    const short = (i: string) => i.replace(/^sha256:/, '').slice(0, 12);
    io.stdout.write(`${fleet.name}: ${state.hosts.length} host(s) recorded in ${store.path}\n`);
    for (const h of state.hosts) {
      io.stdout.write(`  ${h.name.padEnd(28)} ${h.status.padEnd(9)} ${short(h.image)}  ${h.address ?? ''}\n`);
    }
    const r = state.rollout;
    if (r) {
      const done = r.steps.filter((x) => x.status === 'done').length;
      io.stdout.write(
        `rollout ${r.generation} to ${short(r.target)}: ${r.phase}, ${done}/${r.steps.length} steps done` +
          `${r.reason ? ` (${r.reason})` : ''}\n`,
      );
    }
    return 0;
  },
};

export const fleet: Command = {
  name: 'fleet',
  summary: 'plan blue-green rollouts of a fleet (fleets/<image>/<fleet>/fleet.yml) and show its state',
  examples: [
    'stele fleet plan fleets/swarm-worker/prod/fleet.yml',
    'stele fleet status fleets/swarm-worker/prod/fleet.yml',
  ],
  subcommands: [plan, status],
};
