// A fleet.yml brought to life: the adapters its sections name (through the registry), its secrets
// read, its OS image identified, built in the provider's boot format and published once per
// identity; and the fleet commands on top — plan, rollout, rollback, status (with refresh and
// repair), prune, unlock, publish. The CLI parses arguments and prints; everything else is here.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import {
  type BuiltImage,
  type Clock,
  checkSavedPlan,
  emptyState,
  type FleetState,
  generationOf,
  type HostRecord,
  type Lease,
  type LeaseHolder,
  lapsed,
  messageOf,
  type Orchestrator,
  type Plan,
  PlanError,
  type PlanSettings,
  type PluginContext,
  type Provider,
  type PublishedImage,
  type PublishProgress,
  planRollout,
  type Refresh,
  type RetryPolicy,
  RolloutError,
  type RolloutEvent,
  RolloutInterrupted,
  type RolloutSettings,
  realClock,
  refresh,
  resumeRollout,
  retireHosts,
  retrying,
  rollbackRollout,
  type SavedPlan,
  StateError,
  type StateSession,
  StateStore,
  savedPlan,
  shortImage,
  startRollout,
  type World,
} from '@stele/fleet';
import { authorizedKey, checkInterval, healthChecker } from '@stele/health';
import { BuildError, buildImage, imageIdentity } from '@stele/image';
import { type Fleet, formatError, parseFleet, readManifestFile, resolveCount } from '@stele/manifest';
import { Store, writeFileAtomic, writeJsonAtomic } from '@stele/oci';
import { isBug, isReported, RuntimeError } from './errors.ts';
import { available, registry as defaultRegistry, type Registry } from './registry.ts';
import { secretReader } from './secrets.ts';

export interface RuntimeOptions {
  /** The fleet.yml (absolute). */
  file: string;
  /** The command's environment (secrets and HOME are read from it). */
  env: NodeJS.ProcessEnv;
  /** The local OCI store images are resolved and built from. */
  storeDir: string;
  /** The command line as the lock's holder shows it, e.g. `stele fleet rollout`. */
  command: string;
  offline?: boolean;
  pkgOrg?: string;
  /** cosign public key (absolute path): every image must carry a valid signature by it. */
  verifyKey?: string;
  onEvent?: (e: RuntimeEvent) => void;
  registry?: Registry;
  clock?: Clock;
  retry?: Partial<RetryPolicy>;
  /** How long the fleet's lease lasts unless renewed (default 60 s). */
  leaseMs?: number;
}

export type RuntimeEvent =
  | RolloutEvent
  | { type: 'log'; message: string }
  | { type: 'plan'; plan: Plan }
  | { type: 'publish'; phase: 'build' | 'upload' | 'reused' | 'published'; identity: string; format: string }
  | ({ type: 'upload-progress'; identity: string } & PublishProgress);

/** What the fleet's image is now. */
export interface Target {
  identity: string;
  manifest: string;
  images: { ref: string; digest: string }[];
  platform: string;
}

export interface StatusReport {
  location: string;
  state: FleetState;
  /** The lease, while a command holds it. */
  lease?: Lease;
  /** With refresh: hosts the provider no longer has, and ones it has that the state doesn't know. */
  lost?: string[];
  leaked?: { name: string; image: string | undefined }[];
}

export interface PruneReport {
  dryRun: boolean;
  /** Leaked, lost or stuck hosts removed (or that would be). */
  hosts: string[];
  /** Of those, the ones that could not be removed (they stay recorded as retiring). */
  failed: string[];
  /** Published images removed, kept (in use elsewhere), already gone. */
  images: { identity: string; result: 'removed' | 'in-use' | 'gone' | 'would remove' }[];
  kept: string[];
}

/** Reads and checks a fleet.yml (bounded, like every manifest); every error at file:line:col. */
export async function loadFleet(file: string): Promise<Fleet> {
  const text = await readManifestFile(file, file);
  if (!text.ok) throw new RuntimeError(text.errors.map(formatError).join('\n'));
  const r = parseFleet(text.text, file);
  if (!r.ok) throw new RuntimeError(r.errors.map(formatError).join('\n'));
  return r.value;
}

/** Errors of the world and of the user, as RuntimeErrors naming what was being done; bugs pass through. */
async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isReported(err) || isBug(err)) throw err;
    if (err instanceof BuildError) throw new RuntimeError(`${what}: ${err.message}`);
    throw new RuntimeError(`${what}: ${messageOf(err)}`, { cause: err });
  }
}

export class FleetRuntime {
  private providerP: Promise<Provider> | undefined;
  private orchestratorP: Promise<Orchestrator | undefined> | undefined;
  private targetP: Promise<Target> | undefined;
  private readonly registry: Registry;
  private readonly clock: Clock;

  private constructor(
    readonly fleet: Fleet,
    readonly file: string,
    private readonly opts: RuntimeOptions,
  ) {
    this.registry = opts.registry ?? defaultRegistry;
    this.clock = opts.clock ?? realClock;
  }

  /** Reads the fleet.yml. Commands that need its adapters check first that this Stele has each. */
  static async open(opts: RuntimeOptions): Promise<FleetRuntime> {
    const file = resolve(opts.file);
    return new FleetRuntime(await loadFleet(file), file, opts);
  }

  /** Refuses, before anything is done, a section this Stele has no adapter for. */
  check(): void {
    const { provider, orchestrator, state } = this.fleet;
    const r = this.registry;
    if (!r.providers[provider.type]) {
      throw new RuntimeError(
        `${this.file}: provider ${provider.type} is not available in this Stele (available: ${available(r.providers)})`,
      );
    }
    if (orchestrator.type !== 'none' && !r.orchestrators[orchestrator.type]) {
      throw new RuntimeError(
        `${this.file}: orchestrator ${orchestrator.type} is not available in this Stele (available: none, ${available(r.orchestrators)})`,
      );
    }
    const backend = state?.backend ?? 'file';
    if (!r.stateBackends[backend]) {
      throw new RuntimeError(
        `${this.file}: state backend ${backend} is not available in this Stele (available: ${available(r.stateBackends)})`,
      );
    }
  }

  /** `.stele/` beside the fleet.yml: local state, VMs, built images (git-ignored). */
  get workDir(): string {
    return join(dirname(this.file), '.stele');
  }

  private emit(e: RuntimeEvent): void {
    this.opts.onEvent?.(e);
  }

  private context(): PluginContext {
    return {
      fleet: this.fleet.name,
      fleetFile: this.file,
      workDir: this.workDir,
      secret: secretReader(this.file, this.opts.env),
      env: this.opts.env,
      log: (message) => this.emit({ type: 'log', message }),
    };
  }

  private holder(): LeaseHolder {
    let user = this.opts.env.USER ?? 'unknown';
    try {
      user = userInfo().username;
    } catch {}
    return { user, host: hostname(), pid: process.pid, command: this.opts.command };
  }

  planSettings(): PlanSettings {
    const f = this.fleet;
    return {
      fleet: f.name,
      hosts: f.hosts,
      maxSurge: resolveCount(f.strategy.maxSurge, f.hosts),
      minHealthy: resolveCount(f.strategy.minHealthy, f.hosts),
      bakeSeconds: f.strategy.bakeSeconds,
    };
  }

  async stateStore(): Promise<StateStore> {
    const config = this.fleet.state;
    const backend = config?.backend ?? 'file';
    const plugin = this.registry.stateBackends[backend] as
      | {
          create(
            c: typeof config,
            ctx: PluginContext,
          ): ReturnType<NonNullable<Registry['stateBackends']['file']>['create']>;
        }
      | undefined;
    if (!plugin) throw new RuntimeError(`state backend ${backend} is not available`);
    const made = await guard(`state (${backend})`, () => plugin.create(config, this.context()));
    return new StateStore(made, this.fleet.name);
  }

  provider(): Promise<Provider> {
    this.providerP ??= (async () => {
      const config = this.fleet.provider;
      const plugin = this.registry.providers[config.type] as
        | { create(c: typeof config, ctx: PluginContext): Promise<Provider> }
        | undefined;
      if (!plugin) throw new RuntimeError(`provider ${config.type} is not available`);
      return guard(`provider ${config.type}`, () => plugin.create(config, this.context()));
    })();
    return this.providerP;
  }

  orchestrator(): Promise<Orchestrator | undefined> {
    this.orchestratorP ??= (async () => {
      const config = this.fleet.orchestrator;
      if (config.type === 'none') return undefined;
      const plugin = this.registry.orchestrators[config.type] as
        | { create(c: typeof config, ctx: PluginContext): Promise<Orchestrator> }
        | undefined;
      if (!plugin) throw new RuntimeError(`orchestrator ${config.type} is not available`);
      return guard(`orchestrator ${config.type}`, () => plugin.create(config, this.context()));
    })();
    return this.orchestratorP;
  }

  private async store(): Promise<Store> {
    return guard('the OCI store', () => Store.open(this.opts.storeDir));
  }

  private buildOptions(store: Store) {
    const manifest = resolve(dirname(this.file), this.fleet.image);
    return {
      manifest,
      store,
      offline: Boolean(this.opts.offline),
      ...(this.opts.pkgOrg ? { pkgOrg: this.opts.pkgOrg } : {}),
      ...(this.opts.verifyKey ? { verifyKey: this.opts.verifyKey } : {}),
    };
  }

  /** The fleet's OS image as it is now: its identity (what hosts are compared with). */
  target(): Promise<Target> {
    this.targetP ??= (async () => {
      const store = await this.store();
      const common = this.buildOptions(store);
      const id = await guard(this.fleet.image, () => imageIdentity(common));
      return {
        identity: id.identity,
        manifest: common.manifest,
        images: id.plan.images.map((i) => ({ ref: i.ref, digest: i.digest })),
        platform: id.plan.platform,
      };
    })();
    return this.targetP;
  }

  /** What the provider holds compared with the state. */
  async world(state: FleetState): Promise<Refresh> {
    const p = await this.provider();
    const listed = await guard(`list the hosts of ${this.fleet.name}`, () =>
      retrying(() => p.list(), this.clock, { policy: this.opts.retry ?? {} }),
    );
    return refresh(state, listed);
  }

  /** The image built in the provider's boot format, once per identity, under .stele/images/. */
  private async build(identity: string, format: string): Promise<BuiltImage> {
    const dir = join(this.workDir, 'images', identity.replace(/^sha256:/, '').slice(0, 32), format);
    const marker = join(dir, 'built.json');
    const done = await readFile(marker, 'utf8')
      .then((t) => JSON.parse(t) as { identity: string; files: string[] })
      .catch(() => undefined);
    if (done?.identity === identity && done.files.every((f) => existsSync(f))) {
      return { identity, format, files: done.files };
    }
    this.emit({ type: 'publish', phase: 'build', identity, format });
    const store = await this.store();
    const result = await guard(`building ${this.fleet.image} (${format})`, () =>
      buildImage({ ...this.buildOptions(store), formats: [format], dir, name: 'os' }),
    );
    const files = result.outputs.find((o) => o.format === format)?.files ?? [];
    if (!files.length) throw new RuntimeError(`building ${this.fleet.image} (${format}) gave no files`);
    await writeJsonAtomic(marker, { identity, files });
    return { identity, format, files };
  }

  /**
   * The target image where the provider boots hosts from: found when published already, else
   * built and published; recorded in the state when a session holds it.
   */
  async publish(session?: StateSession): Promise<PublishedImage & { reused: boolean }> {
    const { identity } = await this.target();
    const p = await this.provider();
    const retry = { policy: this.opts.retry ?? {} };
    let published: (PublishedImage & { reused: boolean }) | undefined;
    const found = await guard('look for the published image', () =>
      retrying(() => p.findPublished(identity), this.clock, retry),
    );
    if (found) {
      published = { ...found, reused: true };
    } else {
      const built = await this.build(identity, p.bootFormat);
      this.emit({ type: 'publish', phase: 'upload', identity, format: p.bootFormat });
      published = await guard(`publish ${shortImage(identity)} (${p.bootFormat})`, () =>
        retrying(
          () => p.publish(built, (progress) => this.emit({ type: 'upload-progress', identity, ...progress })),
          this.clock,
          retry,
        ),
      );
    }
    this.emit({ type: 'publish', phase: published.reused ? 'reused' : 'published', identity, format: p.bootFormat });
    if (session) {
      const images = session.state.images.filter((i) => !(i.identity === identity && i.format === published.format));
      session.state.images = [
        ...images,
        {
          identity,
          format: published.format,
          ref: published.ref,
          publishedAt:
            session.state.images.find((i) => i.identity === identity && i.format === published.format)?.publishedAt ??
            new Date(this.clock.now()).toISOString(),
        },
      ];
      await session.save();
    }
    return published;
  }

  /** `stele fleet publish`: the target image published, and recorded in the fleet's state. */
  async publishRecorded(): Promise<PublishedImage & { reused: boolean }> {
    this.check();
    await this.target();
    const session = await this.open();
    try {
      return await this.publish(session);
    } finally {
      await session.close();
      await this.closeAdapters();
    }
  }

  private async open(): Promise<StateSession> {
    const store = await this.stateStore();
    return store.open(this.holder(), { ...(this.opts.leaseMs ? { ttlMs: this.opts.leaseMs } : {}), clock: this.clock });
  }

  private async rolloutSettings(image?: PublishedImage): Promise<RolloutSettings> {
    const f = this.fleet;
    let userdata: RolloutSettings['userdata'];
    if (f.ssh) {
      const key = await this.context().secret(f.ssh.privateKey, 'ssh.privateKey');
      try {
        userdata = {
          ssh: { entries: { authorized_keys: { perm: '0600', content: `${authorizedKey(key)}\n` } } },
        };
      } catch (err) {
        throw new RuntimeError(`ssh.privateKey: ${messageOf(err)}`);
      }
    }
    return {
      healthTimeoutSeconds: f.strategy.healthTimeoutSeconds,
      intervalSeconds: checkInterval(f.health),
      rollback: f.strategy.rollback,
      ...(image ? { image } : {}),
      ...(userdata ? { userdata } : {}),
    };
  }

  private async deps(session: StateSession) {
    const provider = await this.provider();
    const orchestrator = await this.orchestrator();
    const f = this.fleet;
    const ssh = f.ssh
      ? {
          user: f.ssh.user,
          port: f.ssh.port,
          privateKey: await this.context().secret(f.ssh.privateKey, 'ssh.privateKey'),
          pins: session.pins,
        }
      : undefined;
    const health = healthChecker(f.health, {
      endpoints: provider,
      ...(ssh ? { ssh } : {}),
      ...(orchestrator ? { orchestrator: { ready: (h: HostRecord) => orchestrator.ready(h) } } : {}),
    });
    return {
      provider,
      ...(orchestrator ? { orchestrator } : {}),
      health,
      clock: this.clock,
      journal: session,
      onEvent: (e: RolloutEvent) => this.emit(e),
      ...(this.opts.retry ? { retry: this.opts.retry } : {}),
    };
  }

  /** The planner's answer, its refusals named after the fleet. */
  private planFor(state: FleetState, identity: string, world?: World): Plan {
    try {
      return planRollout(this.planSettings(), state, identity, world);
    } catch (err) {
      if (err instanceof PlanError) throw new RuntimeError(`${this.fleet.name}: ${err.message}`);
      throw err;
    }
  }

  /**
   * What a rollout would do now, and the plan to save. With `refresh` (the default) the provider
   * is asked which hosts exist; without, the plan is made from the state alone.
   */
  async plan(
    opts: { refresh?: boolean } = {},
  ): Promise<{ plan: Plan; target: Target; saved: SavedPlan; location: string }> {
    const target = await this.target();
    const store = await this.stateStore();
    const { state } = await store.read();
    if (opts.refresh !== false) this.check();
    try {
      const world = opts.refresh === false ? undefined : await this.world(state);
      const plan = this.planFor(state, target.identity, world);
      return { plan, target, saved: savedPlan(plan, state, this.planSettings()), location: store.location };
    } finally {
      await this.closeAdapters();
    }
  }

  /**
   * Rolls the fleet to its image: resumes an interrupted rollout (or a stopped one, with
   * `resume`), else plans (or takes the saved plan, refused if anything moved) and runs it.
   */
  async rollout(opts: { plan?: SavedPlan; resume?: boolean } = {}): Promise<{ state: FleetState; plan?: Plan }> {
    this.check();
    const target = await this.target();
    const session = await this.open();
    try {
      const state = session.state;
      const r = state.rollout;
      let plan: Plan | undefined;
      if (r && (r.phase === 'running' || r.phase === 'stopped')) {
        if (opts.plan) {
          throw new RuntimeError(
            `${this.fleet.name}: a rollout (generation ${r.generation}) is ${r.phase}: finish it or roll it back before applying a saved plan`,
          );
        }
        if (r.phase === 'stopped' && !opts.resume) {
          this.planFor(state, target.identity); // throws the planner's "stopped" message
        }
        if (r.target !== target.identity) {
          throw new RuntimeError(
            `${this.fleet.name}: a rollout to ${shortImage(r.target)} is unfinished, but the image is now ${shortImage(target.identity)}: ` +
              "put the image back to resume it, or run 'stele fleet rollback' first",
          );
        }
        this.emit({ type: 'log', message: `${this.fleet.name}: resuming rollout ${r.generation}` });
      } else {
        if (opts.resume)
          throw new RuntimeError(`${this.fleet.name}: there is no stopped or interrupted rollout to resume`);
        const world = await this.world(state);
        if (opts.plan) {
          const changed = checkSavedPlan(opts.plan, { state, image: target.identity, settings: this.planSettings() });
          if (changed.length) {
            throw new RuntimeError(
              `${this.fleet.name}: the saved plan no longer applies: ${changed.join('; ')}: make a new one with 'stele fleet plan --out'`,
            );
          }
          plan = opts.plan.plan;
        } else {
          plan = this.planFor(state, target.identity, world);
        }
        this.emit({ type: 'plan', plan });
        if (!plan.steps.length) return { state, plan };
      }
      const steps = plan?.steps ?? r?.steps ?? [];
      const creating = steps.some((s) => s.kind === 'create' && (s as { status?: string }).status !== 'done');
      const image = creating ? await this.publish(session) : undefined;
      const deps = await this.deps(session);
      const settings = await this.rolloutSettings(image);
      const end = await guard(this.fleet.name, () =>
        plan ? startRollout(plan, settings, deps) : resumeRollout(settings, deps),
      );
      return { state: end, ...(plan ? { plan } : {}) };
    } finally {
      await session.close();
      await this.closeAdapters();
    }
  }

  /** Undoes a running or stopped rollout: its hosts that have not passed their checks are removed. */
  async rollback(): Promise<FleetState> {
    this.check();
    const session = await this.open();
    try {
      const deps = await this.deps(session);
      return await guard(this.fleet.name, () => rollbackRollout({}, deps));
    } finally {
      await session.close();
      await this.closeAdapters();
    }
  }

  /** The state (without the lock), the lease if held, and with `refresh` the lost and leaked hosts. */
  async status(opts: { refresh?: boolean } = {}): Promise<StatusReport> {
    const store = await this.stateStore();
    const { state } = await store.read();
    const lease = await guard('read the lock', () => store.backend.lease());
    const report: StatusReport = {
      location: store.location,
      state,
      ...(lease && !lapsed(lease) ? { lease } : {}),
    };
    if (opts.refresh) {
      this.check();
      const world = await this.world(state);
      report.lost = world.lost;
      report.leaked = world.leakedHosts.map((h) => ({ name: h.name, image: h.image }));
    }
    await this.closeAdapters();
    return report;
  }

  /**
   * A state that is unreadable (or was lost) rebuilt from what the provider holds: its hosts of
   * this fleet adopted (as live, with the image they carry) and its published images recorded.
   * The unreadable one is kept in .stele/state-backups/.
   */
  async repair(): Promise<{ adopted: string[]; images: number; backup?: string; location: string }> {
    this.check();
    const store = await this.stateStore();
    let readable = true;
    let version: string | undefined;
    try {
      version = (await store.read()).version;
    } catch (err) {
      if (!(err instanceof StateError)) throw err;
      readable = false;
    }
    if (readable && version !== undefined) {
      throw new RuntimeError(
        `the state ${store.location} is readable: nothing to repair ('stele fleet status --refresh' shows lost and leaked hosts, 'stele fleet prune' removes leaked ones)`,
      );
    }
    const p = await this.provider();
    const listed = await guard('list the hosts', () => p.list());
    const published = await guard('list the published images', () => p.listPublished());
    const now = new Date(this.clock.now()).toISOString();
    const state = emptyState(this.fleet.name);
    state.lineage = randomUUID();
    state.hosts = listed.map((h) => ({
      name: h.name,
      image: h.image ?? 'unknown',
      generation: generationOf(this.fleet.name, h.name) ?? 0,
      status: 'live' as const,
      provider: h.ref,
      ...(h.address ? { address: h.address } : {}),
      createdAt: now,
    }));
    state.generation = Math.max(0, ...state.hosts.map((h) => h.generation));
    state.images = published.map((i) => ({ ...i, publishedAt: now }));
    const session = await store.openBlank(this.holder(), state, { clock: this.clock });
    let backup: string | undefined;
    try {
      const raw = await store.backend.read().catch(() => undefined);
      if (raw) {
        backup = join(this.workDir, 'state-backups', `${this.fleet.name}-${now.replace(/[:.]/g, '-')}.json`);
        await writeFileAtomic(backup, raw.text, 0o600);
      }
      await session.save();
    } finally {
      await session.close();
      await this.closeAdapters();
    }
    return {
      adopted: state.hosts.map((h) => h.name),
      images: state.images.length,
      ...(backup ? { backup } : {}),
      location: store.location,
    };
  }

  /**
   * Removes what costs money and serves nothing: hosts of this fleet the state does not know
   * (leaked), records of hosts that are gone (lost), hosts left retiring; and published images
   * no host uses, keeping the newest two (the current one and the previous, for a fast rollback).
   */
  async prune(opts: { dryRun?: boolean; hosts?: boolean; images?: boolean } = {}): Promise<PruneReport> {
    this.check();
    const doHosts = opts.hosts ?? true;
    const doImages = opts.images ?? true;
    const dryRun = Boolean(opts.dryRun);
    const store = await this.stateStore();
    const session = dryRun ? undefined : await store.open(this.holder(), { clock: this.clock });
    try {
      const state = session?.state ?? (await store.read()).state;
      const r = state.rollout;
      if (r && (r.phase === 'running' || r.phase === 'stopped')) {
        throw new RuntimeError(
          `${this.fleet.name}: a rollout (generation ${r.generation}) is ${r.phase}: finish it or roll it back before pruning`,
        );
      }
      const report: PruneReport = { dryRun, hosts: [], failed: [], images: [], kept: [] };
      if (doHosts) {
        const world = await this.world(state);
        const stuck = state.hosts.filter((h) => h.status !== 'live' || world.lost.includes(h.name)).map((h) => h.name);
        report.hosts = [...world.leaked, ...stuck];
        if (session && report.hosts.length) {
          const now = new Date(this.clock.now()).toISOString();
          // Leaked hosts are recorded first: one that cannot be removed is never forgotten again.
          for (const h of world.leakedHosts) {
            session.state.hosts.push({
              name: h.name,
              image: h.image ?? 'unknown',
              generation: generationOf(this.fleet.name, h.name) ?? 0,
              status: 'retiring',
              provider: h.ref,
              createdAt: now,
            });
          }
          await session.save();
          const deps = await this.deps(session);
          report.failed = await guard('prune hosts', () => retireHosts(report.hosts, {}, deps));
        }
      }
      if (doImages) {
        const used = new Set(state.hosts.map((h) => h.image));
        const newest = [...state.images]
          .sort((a, b) => b.publishedAt.localeCompare(a.publishedAt))
          .slice(0, 2)
          .map((i) => i.identity);
        const keep = new Set([...used, ...newest]);
        report.kept = [...new Set(state.images.map((i) => i.identity).filter((i) => keep.has(i)))];
        const p = await this.provider();
        for (const img of state.images.filter((i) => !keep.has(i.identity))) {
          if (dryRun || !session) {
            report.images.push({ identity: img.identity, result: 'would remove' });
            continue;
          }
          const result = await guard(`remove the published image ${shortImage(img.identity)}`, () =>
            retrying(() => p.unpublish(img), this.clock, { policy: this.opts.retry ?? {} }),
          );
          report.images.push({ identity: img.identity, result });
          if (result !== 'in-use') {
            session.state.images = session.state.images.filter((i) => i !== img);
            await session.save();
          }
        }
        if (!dryRun) await this.pruneBuilds(new Set([...keep]));
      }
      return report;
    } finally {
      await session?.close();
      await this.closeAdapters();
    }
  }

  /** Local builds (.stele/images/) of images that are no longer kept. */
  private async pruneBuilds(keep: Set<string>): Promise<void> {
    const dir = join(this.workDir, 'images');
    const kept = new Set([...keep].map((i) => i.replace(/^sha256:/, '').slice(0, 32)));
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (/^[0-9a-f]{32}$/.test(name) && !kept.has(name)) await rm(join(dir, name), { recursive: true, force: true });
    }
  }

  /**
   * Breaks the fleet's lock. A live lease is broken only with `force` (its holder may still be
   * working); a lapsed or unreadable one always. Returns the lease that was broken.
   */
  async unlock(force: boolean): Promise<Lease | undefined> {
    const store = await this.stateStore();
    const held = await guard('read the lock', () => store.backend.lease());
    if (held && !lapsed(held) && !force) {
      const h = held.holder;
      throw new RuntimeError(
        `${this.fleet.name} is locked by ${h.user}@${h.host} (pid ${h.pid}, '${h.command}') since ${held.since}: ` +
          'if that command is gone (killed, its machine lost), run again with --force',
      );
    }
    return guard('break the lock', () => store.backend.breakLease());
  }

  /** Lets go of the adapters' connections. */
  async closeAdapters(): Promise<void> {
    const p = this.providerP;
    const o = this.orchestratorP;
    this.providerP = undefined;
    this.orchestratorP = undefined;
    await Promise.allSettled([p?.then((x) => x.close()), o?.then((x) => x?.close())]);
  }
}
