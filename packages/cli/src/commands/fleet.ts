// `stele fleet …`: parses arguments and prints; the fleet runtime (@stele/fleet-runtime) does the
// rest, whatever the provider, orchestrator or state backend.
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  formatPlan,
  type HostRecord,
  type Lease,
  PlanError,
  parseSavedPlan,
  RolloutError,
  RolloutInterrupted,
  StateError,
  shortImage,
} from '@stele/fleet';
import { FleetRuntime, isReported, type RuntimeEvent } from '@stele/fleet-runtime';
import { defaultStoreDir } from '@stele/oci';
import { type Command, type Context, UserError } from '../cli.ts';

const COMMON = {
  cache: {
    type: 'string',
    placeholder: 'DIR',
    description: 'local OCI store (default $STELE_CACHE or ~/.cache/stele/oci)',
  },
  json: { type: 'boolean', description: 'print JSON' },
} as const;

const IMAGE = {
  offline: { type: 'boolean', description: 'never contact a registry: every image must be in the store' },
  'pkg-org': { type: 'string', placeholder: 'ORG', description: "org for @pkg: templates instead of build.yml's" },
  'verify-key': {
    type: 'string',
    placeholder: 'PUB',
    description: 'cosign public key: every image must carry a valid signature by it',
  },
} as const;

/** Prints what the runtime does as it does it (JSON lines on stderr with --json). */
function printer(ctx: Context) {
  const t0 = Date.now();
  let lastProgress = 0;
  return (e: RuntimeEvent) => {
    const s = ((Date.now() - t0) / 1000).toFixed(0).padStart(5);
    if (ctx.values.json) {
      if (e.type === 'plan') return;
      if (e.type === 'upload-progress' && Date.now() - lastProgress < 1000 && e.done < e.total) return;
      lastProgress = Date.now();
      ctx.io.stderr.write(`${JSON.stringify({ ...e, s: Number(s) })}\n`);
      return;
    }
    let line: string | undefined;
    switch (e.type) {
      case 'plan':
        ctx.io.stdout.write(formatPlan(e.plan));
        return;
      case 'log':
        line = e.message;
        break;
      case 'step':
        line = `${e.status === 'running' ? '→' : '✓'} ${e.step.kind} ${e.step.hosts.join(', ')}`;
        break;
      case 'host':
        line = `  ${e.name}: ${e.status}${e.detail ? ` (${e.detail})` : ''}`;
        break;
      case 'health':
        line = e.ok ? `  ${e.name}: healthy` : `  ${e.name}: not healthy yet (${e.detail})`;
        break;
      case 'retry':
        line = `  ${e.what}: ${e.detail}; retrying in ${(e.waitMs / 1000).toFixed(1)} s (attempt ${e.attempt + 1})`;
        break;
      case 'warning':
        line = `warning: ${e.message}`;
        break;
      case 'rollback':
        line = `rolled back (${e.reason}): removed ${e.hosts.join(', ') || 'nothing'}`;
        break;
      case 'publish':
        line =
          e.phase === 'build'
            ? `building the image ${shortImage(e.identity)} (${e.format})`
            : e.phase === 'upload'
              ? `publishing ${shortImage(e.identity)} (${e.format})`
              : e.phase === 'reused'
                ? `image ${shortImage(e.identity)} is published already`
                : `published ${shortImage(e.identity)}`;
        break;
      case 'upload-progress': {
        // On a terminal, one line rewritten at most every second; elsewhere nothing.
        if (!ctx.io.stdout.isTTY || (Date.now() - lastProgress < 1000 && e.done < e.total)) return;
        lastProgress = Date.now();
        const pct = e.total ? Math.floor((e.done / e.total) * 100) : 100;
        ctx.io.stdout.write(`\r${s}s   ${(e.done / 1e6).toFixed(0)}/${(e.total / 1e6).toFixed(0)} MB (${pct}%)`);
        if (e.done >= e.total) ctx.io.stdout.write('\n');
        return;
      }
    }
    ctx.io.stdout.write(`${s}s ${line}\n`);
  };
}

/** The runtime of the fleet.yml named on the command line. */
async function runtimeOf(ctx: Context, command: string): Promise<FleetRuntime> {
  const { io, values } = ctx;
  return userErrors(() =>
    FleetRuntime.open({
      file: resolve(io.cwd, ctx.positionals[0] as string),
      env: io.env,
      storeDir: resolve(io.cwd, (values.cache as string | undefined) ?? defaultStoreDir(io.env)),
      command,
      ...(values.offline ? { offline: true } : {}),
      ...(values['pkg-org'] ? { pkgOrg: values['pkg-org'] as string } : {}),
      ...(values['verify-key'] ? { verifyKey: resolve(io.cwd, values['verify-key'] as string) } : {}),
      onEvent: printer(ctx),
    }),
  );
}

/** Everything the fleet libraries report for a person to act on, as a one-line error. */
async function userErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isReported(err)) throw new UserError(err.message);
    throw err;
  }
}

function json(ctx: Context, value: unknown): void {
  ctx.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

const plan: Command = {
  name: 'plan',
  summary: 'show what a rollout of the fleet would do (hosts started, checked, baked, retired); --out saves it',
  usage: '[--offline] [--pkg-org ORG] [--verify-key PUB] [--out PLAN.json] [--no-refresh] [--json] FLEET.yml',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele fleet plan fleets/swarm-worker/prod/fleet.yml',
    'stele fleet plan --out plan.json fleets/swarm-worker/prod/fleet.yml   # review it, then rollout --plan',
    'stele fleet plan --json fleets/swarm-worker/prod/fleet.yml | jq .steps',
  ],
  options: {
    ...COMMON,
    ...IMAGE,
    out: { type: 'string', placeholder: 'FILE', description: "save the plan for 'stele fleet rollout --plan FILE'" },
    'no-refresh': {
      type: 'boolean',
      description: 'plan from the state alone, without asking the provider which hosts exist',
    },
  },
  async run(ctx) {
    const rt = await runtimeOf(ctx, 'stele fleet plan');
    const r = await userErrors(() => rt.plan({ refresh: !ctx.values['no-refresh'] }));
    const out = ctx.values.out as string | undefined;
    if (out) await writeFile(resolve(ctx.io.cwd, out), `${JSON.stringify(r.saved, null, 2)}\n`);
    if (ctx.values.json) {
      json(ctx, {
        ...r.plan,
        image: { manifest: r.target.manifest, platform: r.target.platform, images: r.target.images },
      });
    } else {
      ctx.io.stdout.write(formatPlan(r.plan));
      ctx.io.stdout.write(`  image ${r.target.manifest} (${r.target.images.length} images for ${r.target.platform})\n`);
      if (out)
        ctx.io.stdout.write(
          `plan saved to ${out}: apply it with 'stele fleet rollout --plan ${out} ${ctx.positionals[0]}'\n`,
        );
    }
    return 0;
  },
};

const rollout: Command = {
  name: 'rollout',
  summary: 'roll the fleet to its image blue-green (resumes a rollout that was interrupted)',
  usage: '[--plan PLAN.json] [--resume] [--offline] [--pkg-org ORG] [--verify-key PUB] [--json] FLEET.yml',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele fleet rollout fleets/swarm-worker/dev/fleet.yml',
    'stele fleet rollout --plan plan.json fleets/swarm-worker/prod/fleet.yml   # exactly the reviewed plan',
    'stele fleet rollout --resume fleets/swarm-worker/dev/fleet.yml            # retry a stopped rollout',
    'stele fleet rollout --verify-key cosign.pub fleets/swarm-worker/dev/fleet.yml',
  ],
  options: {
    ...COMMON,
    ...IMAGE,
    plan: { type: 'string', placeholder: 'FILE', description: "run the plan saved by 'stele fleet plan --out'" },
    resume: { type: 'boolean', description: 'retry a rollout that stopped on a failed check (rollback: manual)' },
  },
  async run(ctx) {
    const file = ctx.values.plan as string | undefined;
    let saved: ReturnType<typeof parseSavedPlan> | undefined;
    if (file) {
      const text = await readFile(resolve(ctx.io.cwd, file), 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new UserError(`cannot read the plan ${file}: ${err.code ?? err.message}`);
      });
      saved = await userErrors(async () => parseSavedPlan(text, file));
    }
    const rt = await runtimeOf(
      ctx,
      `stele fleet rollout${file ? ' --plan' : ''}${ctx.values.resume ? ' --resume' : ''}`,
    );
    const end = await userErrors(() =>
      rt.rollout({ ...(saved ? { plan: saved } : {}), resume: Boolean(ctx.values.resume) }),
    );
    if (end.plan && !end.plan.steps.length) {
      if (ctx.values.json) json(ctx, end.state);
      return 0;
    }
    if (ctx.values.json) json(ctx, end.state);
    const hosts = end.state.hosts.filter((h) => h.status === 'live');
    const target = end.state.rollout?.target ?? '';
    if (!ctx.values.json) ctx.io.stdout.write(`${rt.fleet.name}: ${hosts.length} host(s) on ${shortImage(target)}\n`);
    const warnings = end.state.rollout?.warnings ?? [];
    if (warnings.length) {
      throw new UserError(`${rt.fleet.name}: rolled out, but: ${warnings.join('; ')}`);
    }
    return 0;
  },
};

const rollback: Command = {
  name: 'rollback',
  summary: 'undo an unfinished or stopped rollout: remove the new hosts that have not passed their checks',
  usage: '[--json] FLEET.yml',
  positionals: { min: 1, max: 1 },
  examples: ['stele fleet rollback fleets/swarm-worker/dev/fleet.yml'],
  options: { json: COMMON.json },
  async run(ctx) {
    const rt = await runtimeOf(ctx, 'stele fleet rollback');
    const end = await userErrors(() => rt.rollback());
    if (ctx.values.json) json(ctx, end);
    else ctx.io.stdout.write(`${rt.fleet.name}: rolled back; ${end.hosts.length} host(s) left\n`);
    return 0;
  },
};

function hostLine(h: HostRecord, lost: Set<string>): string {
  const status = lost.has(h.name) ? 'lost' : h.error ? 'retire failed' : h.status;
  return `  ${h.name.padEnd(28)} ${status.padEnd(13)} ${shortImage(h.image)}  ${h.address ?? ''}${h.error ? `  (${h.error})` : ''}\n`;
}

function leaseLine(l: Lease): string {
  const h = l.holder;
  return `locked by ${h.user}@${h.host} (pid ${h.pid}, '${h.command}') since ${l.since}\n`;
}

const status: Command = {
  name: 'status',
  summary: "the fleet's hosts and its running or last rollout; --refresh compares with what the provider holds",
  usage: '[--refresh] [--repair] [--json] FLEET.yml',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele fleet status fleets/swarm-worker/prod/fleet.yml',
    'stele fleet status --refresh fleets/swarm-worker/prod/fleet.yml   # lost and leaked hosts',
    'stele fleet status --repair fleets/swarm-worker/dev/fleet.yml     # rebuild an unreadable or lost state',
  ],
  options: {
    json: COMMON.json,
    refresh: {
      type: 'boolean',
      description: 'ask the provider: hosts that are gone (lost) or unknown to the state (leaked)',
    },
    repair: {
      type: 'boolean',
      description: 'rebuild an unreadable or lost state from the hosts the provider holds (the old one is kept)',
    },
  },
  async run(ctx) {
    const { io, values } = ctx;
    if (values.repair) {
      const rt = await runtimeOf(ctx, 'stele fleet status --repair');
      const r = await userErrors(() => rt.repair());
      if (values.json) json(ctx, r);
      else {
        io.stdout.write(
          `${rt.fleet.name}: state ${r.location} rebuilt from the provider: ${r.adopted.length} host(s) adopted` +
            `${r.adopted.length ? ` (${r.adopted.join(', ')})` : ''}, ${r.images} published image(s)\n`,
        );
        if (r.backup) io.stdout.write(`the unreadable state was kept as ${r.backup}\n`);
      }
      return 0;
    }
    const rt = await runtimeOf(ctx, 'stele fleet status');
    const r = await userErrors(() => rt.status({ refresh: Boolean(values.refresh) }));
    if (values.json) {
      json(ctx, {
        state: r.location,
        ...r.state,
        ...(r.lease ? { lock: r.lease } : {}),
        ...(values.refresh ? { lost: r.lost, leaked: r.leaked } : {}),
      });
      return 0;
    }
    const { state } = r;
    const lost = new Set(r.lost ?? []);
    io.stdout.write(`${rt.fleet.name}: ${state.hosts.length} host(s) recorded in ${r.location}\n`);
    for (const h of state.hosts) io.stdout.write(hostLine(h, lost));
    for (const h of r.leaked ?? []) {
      io.stdout.write(
        `  ${h.name.padEnd(28)} ${'leaked'.padEnd(13)} ${h.image ? shortImage(h.image) : 'unknown'}  (not in the state: 'stele fleet prune' removes it)\n`,
      );
    }
    const ro = state.rollout;
    if (ro) {
      const done = ro.steps.filter((x) => x.status === 'done').length;
      io.stdout.write(
        `rollout ${ro.generation} to ${shortImage(ro.target)}: ${ro.phase}, ${done}/${ro.steps.length} steps done` +
          `${ro.reason ? ` (${ro.reason})` : ''}\n`,
      );
    }
    if (r.lease) io.stdout.write(leaseLine(r.lease));
    return 0;
  },
};

const prune: Command = {
  name: 'prune',
  summary: 'remove leaked and stuck hosts, and published images no host uses (the newest two are kept)',
  usage: '[--dry-run] [--hosts | --images] [--json] FLEET.yml',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele fleet prune --dry-run fleets/swarm-worker/prod/fleet.yml',
    'stele fleet prune --images fleets/swarm-worker/prod/fleet.yml   # only published images',
  ],
  options: {
    json: COMMON.json,
    'dry-run': { type: 'boolean', description: 'only say what would be removed' },
    hosts: { type: 'boolean', description: 'only hosts' },
    images: { type: 'boolean', description: 'only published images' },
  },
  async run(ctx) {
    const { values } = ctx;
    const only = values.hosts ? 'hosts' : values.images ? 'images' : undefined;
    if (values.hosts && values.images) throw new UserError('--hosts and --images: give at most one (neither: both)');
    const rt = await runtimeOf(ctx, 'stele fleet prune');
    const r = await userErrors(() =>
      rt.prune({ dryRun: Boolean(values['dry-run']), hosts: only !== 'images', images: only !== 'hosts' }),
    );
    if (values.json) json(ctx, r);
    else {
      const verb = r.dryRun ? 'would remove' : 'removed';
      const hosts = r.hosts.filter((h) => !r.failed.includes(h));
      ctx.io.stdout.write(
        `${rt.fleet.name}: ${verb} ${hosts.length} host(s)${hosts.length ? `: ${hosts.join(', ')}` : ''}\n`,
      );
      for (const i of r.images) ctx.io.stdout.write(`  image ${shortImage(i.identity)}: ${i.result}\n`);
      if (r.kept.length) ctx.io.stdout.write(`  kept ${r.kept.map(shortImage).join(', ')}\n`);
    }
    if (r.failed.length)
      throw new UserError(
        `${rt.fleet.name}: could not remove ${r.failed.join(', ')} (recorded as retiring; run prune again)`,
      );
    return 0;
  },
};

const unlock: Command = {
  name: 'unlock',
  summary: "break the fleet's lock when the command that held it is gone",
  usage: '[--force] FLEET.yml',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele fleet unlock fleets/swarm-worker/prod/fleet.yml',
    'stele fleet unlock --force fleets/swarm-worker/prod/fleet.yml',
  ],
  options: {
    force: { type: 'boolean', description: 'break a lease that has not lapsed yet (its holder may still run!)' },
  },
  async run(ctx) {
    const rt = await runtimeOf(ctx, 'stele fleet unlock');
    const broken = await userErrors(() => rt.unlock(Boolean(ctx.values.force)));
    ctx.io.stdout.write(
      broken ? `${rt.fleet.name}: broke the lock; it was ${leaseLine(broken)}` : `${rt.fleet.name}: not locked\n`,
    );
    return 0;
  },
};

const publish: Command = {
  name: 'publish',
  summary:
    "build the fleet's image in its provider's boot format and publish it where hosts boot from (once per image)",
  usage: '[--offline] [--pkg-org ORG] [--verify-key PUB] [--json] FLEET.yml',
  positionals: { min: 1, max: 1 },
  examples: ['stele fleet publish fleets/swarm-worker/prod/fleet.yml'],
  options: { ...COMMON, ...IMAGE },
  async run(ctx) {
    const rt = await runtimeOf(ctx, 'stele fleet publish');
    const r = await userErrors(() => rt.publishRecorded());
    if (ctx.values.json) json(ctx, r);
    else
      ctx.io.stdout.write(
        `${rt.fleet.name}: image ${shortImage(r.identity)} ${r.reused ? 'was published already' : 'published'} (${r.format})\n`,
      );
    return 0;
  },
};

export const fleet: Command = {
  name: 'fleet',
  summary: 'blue-green rollouts of a fleet (fleets/<image>/<fleet>/fleet.yml): plan, roll out, roll back, status',
  examples: [
    'stele fleet plan fleets/swarm-worker/prod/fleet.yml',
    'stele fleet rollout fleets/swarm-worker/dev/fleet.yml',
    'stele fleet status --refresh fleets/swarm-worker/prod/fleet.yml',
  ],
  subcommands: [plan, rollout, rollback, status, prune, unlock, publish],
};
