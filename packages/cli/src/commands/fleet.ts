import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import {
  FileStateStore,
  type FleetState,
  formatPlan,
  type Orchestrator,
  PlanError,
  type Provider,
  planRollout,
  type RolloutDeps,
  RolloutError,
  type RolloutEvent,
  type RolloutSettings,
  realClock,
  resumeRollout,
  rollbackRollout,
  StateError,
  shortImage,
  startRollout,
  statePath,
} from '@stele/fleet';
import { authorizedKey, checkInterval, FileHostKeyPins, healthChecker } from '@stele/health';
import { BuildError, buildImage, imageIdentity } from '@stele/image';
import { type Fleet, formatError, parseFleet, resolveCount, type SecretRef } from '@stele/manifest';
import { defaultStoreDir, Store } from '@stele/oci';
import { SwarmOrchestrator } from '@stele/orchestrator-swarm';
import { QemuProvider } from '@stele/provider-qemu';
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

/** The fleet's OS image: its identity (what hosts are compared against) and resolved plan. */
async function targetOf(ctx: Context, fleet: Fleet, file: string) {
  const { io, values } = ctx;
  const manifest = resolve(dirname(file), fleet.image);
  const store = await Store.open(resolve(io.cwd, (values.cache as string | undefined) ?? defaultStoreDir(io.env)));
  const common = {
    manifest,
    store,
    offline: Boolean(values.offline),
    ...(values['pkg-org'] ? { pkgOrg: values['pkg-org'] as string } : {}),
    ...(values['verify-key'] ? { verifyKey: resolve(io.cwd, values['verify-key'] as string) } : {}),
  };
  try {
    const id = await imageIdentity(common);
    return { ...id, manifest, store, common };
  } catch (err) {
    if (err instanceof BuildError) throw new UserError(`${fleet.image}: ${err.message}`);
    throw err;
  }
}

function makePlan(fleet: Fleet, state: FleetState, identity: string) {
  const s = fleet.strategy;
  try {
    return planRollout(
      {
        fleet: fleet.name,
        hosts: fleet.hosts,
        maxSurge: resolveCount(s.maxSurge, fleet.hosts),
        minHealthy: resolveCount(s.minHealthy, fleet.hosts),
        bakeSeconds: s.bakeSeconds,
      },
      state,
      identity,
    );
  } catch (err) {
    if (err instanceof PlanError) throw new UserError(`${fleet.name}: ${err.message}`);
    throw err;
  }
}

async function readSecret(ref: SecretRef, file: string, env: NodeJS.ProcessEnv, what: string): Promise<string> {
  if ('env' in ref) {
    const v = env[ref.env];
    if (!v) throw new UserError(`${what}: the environment variable ${ref.env} is not set`);
    return v;
  }
  const path = ref.file.startsWith('~/') ? join(homedir(), ref.file.slice(2)) : resolve(dirname(file), ref.file);
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new UserError(
      `${what}: cannot read ${ref.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

interface BootImage {
  kernel: string;
  initrd: string;
  cmdline: string;
}

/** The provider and orchestrator this CLI can drive (narrowed); a clear error for the others. */
function supported(fleet: Fleet) {
  const p = fleet.provider;
  const o = fleet.orchestrator;
  if (p.type !== 'qemu') throw new UserError(`provider ${p.type} is not available yet (qemu is)`);
  if (o.type === 'ecs') throw new UserError(`orchestrator ${o.type} is not available yet (swarm is)`);
  return { provider: p, orchestrator: o };
}

function providerFor(fleet: Fleet, file: string, image?: BootImage): Provider {
  const p = supported(fleet).provider;
  return new QemuProvider({
    dir: resolve(dirname(file), p.dir ?? join('.stele', 'qemu', fleet.name)),
    ...(image ?? {}),
    cpus: p.cpus,
    memoryMiB: p.memoryMiB,
    accel: p.accel,
    sshPortBase: p.sshPortBase,
    ...(p.forwards ? { forwards: p.forwards } : {}),
  });
}

async function orchestratorFor(fleet: Fleet, file: string, env: NodeJS.ProcessEnv) {
  const o = supported(fleet).orchestrator;
  if (o.type === 'none') return undefined;
  const tls = o.tls
    ? {
        ca: await readSecret(o.tls.ca, file, env, 'orchestrator.tls.ca'),
        cert: await readSecret(o.tls.cert, file, env, 'orchestrator.tls.cert'),
        key: await readSecret(o.tls.key, file, env, 'orchestrator.tls.key'),
      }
    : undefined;
  try {
    return new SwarmOrchestrator({
      endpoint: o.endpoint,
      drainSeconds: o.drainSeconds,
      ...(tls ? { tls } : {}),
      ...(o.labels ? { labels: o.labels } : {}),
    });
  } catch (err) {
    throw new UserError(`orchestrator: ${(err as Error).message}`);
  }
}

/** Prints what the engine does as it does it (JSON lines on stderr with --json). */
function printer(ctx: Context) {
  const t0 = Date.now();
  return (e: RolloutEvent) => {
    const s = ((Date.now() - t0) / 1000).toFixed(0).padStart(5);
    if (ctx.values.json) {
      ctx.io.stderr.write(`${JSON.stringify({ ...e, s: Number(s) })}\n`);
      return;
    }
    const line =
      e.type === 'step'
        ? `${e.status === 'running' ? '→' : '✓'} ${e.step.kind} ${e.step.hosts.join(', ')}`
        : e.type === 'host'
          ? `  ${e.name}: ${e.status}`
          : e.type === 'health'
            ? e.ok
              ? `  ${e.name}: healthy`
              : `  ${e.name}: not healthy yet (${e.detail})`
            : `rolled back (${e.reason}): removed ${e.hosts.join(', ') || 'nothing'}`;
    ctx.io.stdout.write(`${s}s ${line}\n`);
  };
}

interface Wired {
  deps: RolloutDeps;
  settings: RolloutSettings;
  close(): Promise<void>;
}

async function wire(
  ctx: Context,
  fleet: Fleet,
  file: string,
  store: FileStateStore,
  image?: BootImage,
): Promise<Wired> {
  const env = ctx.io.env;
  const provider = providerFor(fleet, file, image);
  const orchestrator:
    | (Orchestrator & { nodeReady?: SwarmOrchestrator['nodeReady']; close?(): Promise<void> })
    | undefined = await orchestratorFor(fleet, file, env);
  const ssh = fleet.ssh
    ? {
        user: fleet.ssh.user,
        port: fleet.ssh.port,
        privateKey: await readSecret(fleet.ssh.privateKey, file, env, 'ssh.privateKey'),
        // Host keys pinned at first contact, beside the state.
        pins: new FileHostKeyPins(`${store.path.replace(/\.json$/, '')}.hostkeys.json`),
      }
    : undefined;
  const health = healthChecker(fleet.health, {
    endpoints: provider,
    ...(ssh ? { ssh } : {}),
    ...(orchestrator?.nodeReady
      ? { orchestrator: { nodeReady: (h) => (orchestrator.nodeReady as SwarmOrchestrator['nodeReady'])(h) } }
      : {}),
  });
  let userdata: Record<string, unknown> | undefined;
  if (ssh) {
    try {
      userdata = {
        ssh: { entries: { authorized_keys: { perm: '0600', content: `${authorizedKey(ssh.privateKey)}\n` } } },
      };
    } catch (err) {
      throw new UserError(`ssh.privateKey: ${(err as Error).message}`);
    }
  }
  return {
    deps: {
      provider,
      ...(orchestrator ? { orchestrator } : {}),
      health,
      clock: realClock,
      store,
      onEvent: printer(ctx),
    },
    settings: {
      healthTimeoutSeconds: fleet.strategy.healthTimeoutSeconds,
      intervalSeconds: checkInterval(fleet.health),
      rollback: fleet.strategy.rollback,
      ...(userdata ? { userdata } : {}),
    },
    close: async () => {
      await orchestrator?.close?.();
    },
  };
}

/** kernel+initrd of the target image, built once per identity beside the fleet's state. */
async function bootImage(target: Awaited<ReturnType<typeof targetOf>>, stateFile: string): Promise<BootImage> {
  const dir = join(dirname(stateFile), 'images', target.identity.replace(/^sha256:/, '').slice(0, 32));
  const files = {
    kernel: join(dir, 'os-kernel'),
    initrd: join(dir, 'os-initrd.img'),
    cmdline: join(dir, 'os-cmdline'),
  };
  if (!Object.values(files).every((f) => existsSync(f))) {
    try {
      await buildImage({ ...target.common, formats: ['kernel+initrd'], dir, name: 'os' });
    } catch (err) {
      if (err instanceof BuildError) throw new UserError(`building the image: ${err.message}`);
      throw err;
    }
  }
  return { kernel: files.kernel, initrd: files.initrd, cmdline: (await readFile(files.cmdline, 'utf8')).trim() };
}

const rollout: Command = {
  name: 'rollout',
  summary: 'roll the fleet to its image blue-green (resumes a rollout that was interrupted)',
  usage: '[--offline] [--pkg-org ORG] [--verify-key PUB] [--json] FLEET.yml',
  positionals: { min: 1, max: 1 },
  examples: [
    'stele fleet rollout fleets/swarm-worker/dev/fleet.yml',
    'stele fleet rollout --verify-key cosign.pub fleets/swarm-worker/dev/fleet.yml',
  ],
  options: {
    ...COMMON,
    offline: { type: 'boolean', description: 'never contact a registry: every image must be in the store' },
    'pkg-org': { type: 'string', placeholder: 'ORG', description: "org for @pkg: templates instead of build.yml's" },
    'verify-key': {
      type: 'string',
      placeholder: 'PUB',
      description: 'cosign public key: every image must carry a valid signature by it',
    },
  },
  async run(ctx: Context) {
    const file = resolve(ctx.io.cwd, ctx.positionals[0] as string);
    const fleet = await loadFleet(file);
    // What is not supported fails before anything is resolved or built.
    supported(fleet);
    const { store, state } = await openState(fleet, file);
    const target = await targetOf(ctx, fleet, file);
    const running = state.rollout?.phase === 'running' ? state.rollout : undefined;
    if (running && running.target !== target.identity) {
      throw new UserError(
        `${fleet.name}: a rollout to ${shortImage(running.target)} is unfinished, but the image is now ${shortImage(target.identity)}: ` +
          "put the image back to resume it, or run 'stele fleet rollback' first",
      );
    }
    const p = running ? undefined : makePlan(fleet, state, target.identity);
    if (p && !p.steps.length) {
      ctx.io.stdout.write(formatPlan(p));
      return 0;
    }
    const w = await wire(ctx, fleet, file, store, await bootImage(target, store.path));
    try {
      if (p) ctx.io.stdout.write(formatPlan(p));
      else ctx.io.stdout.write(`${fleet.name}: resuming rollout ${running?.generation}\n`);
      const end = p ? await startRollout(p, w.settings, w.deps) : await resumeRollout(w.settings, w.deps);
      if (ctx.values.json) ctx.io.stdout.write(`${JSON.stringify(end, null, 2)}\n`);
      else ctx.io.stdout.write(`${fleet.name}: ${end.hosts.length} host(s) on ${shortImage(target.identity)}\n`);
      return 0;
    } catch (err) {
      if (err instanceof RolloutError || err instanceof StateError)
        throw new UserError(`${fleet.name}: ${err.message}`);
      throw new UserError(
        `${fleet.name}: ${(err as Error).message}: the rollout is recorded; run 'stele fleet rollout' again to resume, ` +
          "or 'stele fleet rollback' to undo it",
      );
    } finally {
      await w.close();
    }
  },
};

const rollback: Command = {
  name: 'rollback',
  summary: 'undo an unfinished or stopped rollout: remove the new hosts that have not passed their checks',
  usage: '[--json] FLEET.yml',
  positionals: { min: 1, max: 1 },
  examples: ['stele fleet rollback fleets/swarm-worker/dev/fleet.yml'],
  options: { json: COMMON.json },
  async run(ctx: Context) {
    const file = resolve(ctx.io.cwd, ctx.positionals[0] as string);
    const fleet = await loadFleet(file);
    const { store } = await openState(fleet, file);
    const w = await wire(ctx, fleet, file, store);
    try {
      const end = await rollbackRollout(w.deps);
      ctx.io.stdout.write(
        ctx.values.json
          ? `${JSON.stringify(end, null, 2)}\n`
          : `${fleet.name}: rolled back; ${end.hosts.length} host(s) left\n`,
      );
      return 0;
    } catch (err) {
      throw new UserError(`${fleet.name}: ${(err as Error).message}`);
    } finally {
      await w.close();
    }
  },
};

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
    const target = await targetOf(ctx, fleet, file);
    const p = makePlan(fleet, state, target.identity);
    if (values.json) {
      io.stdout.write(
        `${JSON.stringify({ ...p, image: { manifest: target.manifest, images: target.plan.images } }, null, 2)}\n`,
      );
    } else {
      io.stdout.write(formatPlan(p));
      io.stdout.write(`  image ${target.manifest} (${target.plan.images.length} images for ${target.plan.platform})\n`);
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
    io.stdout.write(`${fleet.name}: ${state.hosts.length} host(s) recorded in ${store.path}\n`);
    for (const h of state.hosts) {
      io.stdout.write(`  ${h.name.padEnd(28)} ${h.status.padEnd(9)} ${shortImage(h.image)}  ${h.address ?? ''}\n`);
    }
    const r = state.rollout;
    if (r) {
      const done = r.steps.filter((x) => x.status === 'done').length;
      io.stdout.write(
        `rollout ${r.generation} to ${shortImage(r.target)}: ${r.phase}, ${done}/${r.steps.length} steps done` +
          `${r.reason ? ` (${r.reason})` : ''}\n`,
      );
    }
    return 0;
  },
};

export const fleet: Command = {
  name: 'fleet',
  summary: 'blue-green rollouts of a fleet (fleets/<image>/<fleet>/fleet.yml): plan, roll out, roll back, status',
  examples: [
    'stele fleet plan fleets/swarm-worker/prod/fleet.yml',
    'stele fleet rollout fleets/swarm-worker/dev/fleet.yml',
    'stele fleet status fleets/swarm-worker/prod/fleet.yml',
  ],
  subcommands: [plan, rollout, rollback, status],
};
