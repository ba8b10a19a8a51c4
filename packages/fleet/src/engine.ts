// Runs a plan against the real world through the ports, writing every move to the state first:
// a host is recorded as `creating` (with its create token) before the provider is asked for it,
// `pending` once it exists, `live` only once it passed its checks, `retiring` before it is
// drained; each step is marked done only when finished. A run that dies (crash, kill, an error
// that outlasted its retries) leaves the rollout `running`; running again resumes at the first
// step not done, finding hosts a dead run had already asked for. A failed health check or a
// fatal error undoes the batch that failed (rollback: auto) or stops there (manual) for
// `stele fleet rollback` or `stele fleet rollout --resume`.
//
// The caller holds the fleet's lock (StateSession) for the whole run. Hosts of one step are
// created, checked and retired concurrently (bounded); their state writes are serialized by
// the journal.
import { createHash } from 'node:crypto';
import { classify, type ErrorKind, FleetError, messageOf, type RetryPolicy, retrying } from './errors.ts';
import { type Plan, shortImage } from './plan.ts';
import type { Clock, HealthChecker, Orchestrator, Provider, PublishedImage, StateJournal } from './ports.ts';
import { committedHosts } from './state/schema.ts';
import { StateError } from './state/store.ts';
import {
  type FleetState,
  type HostRecord,
  mergeUserData,
  type RolloutRecord,
  type Step,
  type UserData,
} from './types.ts';

export interface RolloutSettings {
  healthTimeoutSeconds: number;
  /** Seconds between health checks (default 5). */
  intervalSeconds?: number;
  rollback: 'auto' | 'manual';
  /** The published target image new hosts boot from (not needed to roll back). */
  image?: PublishedImage;
  /** User data every new host gets (its hostname and the orchestrator's join data are added). */
  userdata?: UserData;
  /** Hosts of one step worked on at once (default 10). */
  concurrency?: number;
}

export interface RolloutDeps {
  provider: Provider;
  orchestrator?: Orchestrator;
  health: HealthChecker;
  clock: Clock;
  journal: StateJournal;
  onEvent?: (e: RolloutEvent) => void;
  /** Retries of retryable errors (default: errors.ts DEFAULT_RETRY). */
  retry?: Partial<RetryPolicy>;
}

export type RolloutEvent =
  | { type: 'step'; index: number; step: Step; status: 'running' | 'done' }
  | {
      type: 'host';
      name: string;
      status: 'creating' | 'found' | 'created' | 'live' | 'retiring' | 'removed' | 'retire-failed';
      detail?: string;
    }
  | { type: 'health'; name: string; ok: boolean; detail: string }
  | { type: 'retry'; what: string; attempt: number; waitMs: number; detail: string }
  | { type: 'warning'; message: string }
  | { type: 'rollback'; reason: string; hosts: string[] };

/** A rollout that ended without reaching its target (rolled back or stopped). */
export class RolloutError extends Error {
  constructor(
    message: string,
    readonly phase: 'rolled-back' | 'stopped',
  ) {
    super(message);
    this.name = 'RolloutError';
  }
}

/**
 * A rollout that could not go on for now (an error that outlasted its retries, or one only the
 * user can mend): it stays `running` in the state, to be resumed or rolled back.
 */
export class RolloutInterrupted extends Error {
  constructor(
    message: string,
    readonly kind: ErrorKind,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RolloutInterrupted';
  }
}

class HealthFailure extends Error {}

const MAX_HISTORY = 20;

function finish(state: FleetState, r: RolloutRecord, phase: RolloutRecord['phase'], now: number, reason?: string) {
  r.phase = phase;
  r.endedAt = new Date(now).toISOString();
  if (reason) r.reason = reason;
  const { steps: _steps, ...summary } = r;
  state.history = [summary, ...state.history.filter((h) => h.generation !== r.generation)].slice(0, MAX_HISTORY);
}

/** The idempotency token of a host's create request: the same for every attempt, never for another state. */
export function createToken(state: FleetState, name: string, generation: number): string {
  return createHash('sha256').update(`${state.lineage}\0${generation}\0${name}`).digest('hex').slice(0, 32);
}

/** Starts `plan` (no rollout may be running or stopped) and runs it to the end. */
export async function startRollout(plan: Plan, settings: RolloutSettings, deps: RolloutDeps): Promise<FleetState> {
  const state = deps.journal.state;
  const r0 = state.rollout;
  if (r0?.phase === 'running' || r0?.phase === 'stopped') {
    throw new Error(`a rollout (generation ${r0.generation}) is ${r0.phase}: resume it or roll it back`);
  }
  if (plan.generation <= state.generation) {
    throw new Error('the state changed since the plan was made: plan again');
  }
  state.generation = plan.generation;
  state.rollout = {
    generation: plan.generation,
    target: plan.to,
    from: plan.from,
    phase: 'running',
    steps: plan.steps.map((s) => ({ ...s, status: 'pending' as const })),
    startedAt: new Date(deps.clock.now()).toISOString(),
  };
  await deps.journal.save();
  return run(settings, deps);
}

/** Resumes the state's rollout: a running one (after a crash or an error), or a stopped one (its failed step again). */
export async function resumeRollout(settings: RolloutSettings, deps: RolloutDeps): Promise<FleetState> {
  const r = deps.journal.state.rollout;
  if (r?.phase !== 'running' && r?.phase !== 'stopped') throw new Error('no rollout to resume');
  if (r.phase === 'stopped') {
    r.phase = 'running';
    delete r.endedAt;
    delete r.reason;
    await deps.journal.save();
  }
  return run(settings, deps);
}

/** Runs `fn` over `items`, at most `limit` at once; on the first failure starts no more, lets the rest finish, then throws it. */
async function bounded<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw failed.err;
}

class Run {
  readonly state: FleetState;
  readonly r: RolloutRecord;

  constructor(
    readonly settings: RolloutSettings,
    readonly deps: RolloutDeps,
  ) {
    this.state = deps.journal.state;
    this.r = this.state.rollout as RolloutRecord;
  }

  save = () => this.deps.journal.save();
  emit = (e: RolloutEvent) => this.deps.onEvent?.(e);
  get limit() {
    return this.settings.concurrency ?? 10;
  }

  /** A call to the outside world, retried while its errors are retryable. */
  call<T>(what: string, fn: () => Promise<T>, opts: { classify?: (e: unknown) => ErrorKind; attempts?: number } = {}) {
    return retrying(fn, this.deps.clock, {
      policy: { ...this.deps.retry, ...(opts.attempts ? { attempts: opts.attempts } : {}) },
      ...(opts.classify ? { classify: opts.classify } : {}),
      onRetry: (err, attempt, waitMs) => this.emit({ type: 'retry', what, attempt, waitMs, detail: messageOf(err) }),
    });
  }

  host(name: string): HostRecord {
    const h = this.state.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`the state has no host ${name}`);
    return h;
  }

  async create(name: string, join: UserData): Promise<void> {
    const { r, state } = this;
    let h = state.hosts.find((x) => x.name === name);
    if (!h) {
      h = {
        name,
        image: r.target,
        generation: r.generation,
        status: 'creating',
        createdAt: new Date(this.deps.clock.now()).toISOString(),
        token: createToken(state, name, r.generation),
      };
      state.hosts.push(h);
      await this.save();
    }
    if (h.status !== 'creating') return;
    const image = this.settings.image;
    if (!image) throw new FleetError('no published image to start new hosts from', 'fatal');
    if (image.identity !== r.target) {
      throw new FleetError(
        `the published image is ${shortImage(image.identity)} but the rollout is to ${shortImage(r.target)}`,
        'fatal',
      );
    }
    const host = h;
    const token = h.token ?? createToken(state, name, r.generation);
    const userdata = mergeUserData(this.settings.userdata ?? {}, join, { hostname: { content: name } });
    let found = false;
    // Each attempt looks first: an earlier attempt (or a dead run) may have made it already.
    const made = await this.call(`create ${name}`, async () => {
      const existing = await this.deps.provider.find(name);
      if (existing) {
        if (existing.image && existing.image !== r.target) {
          // Not ours to touch: it leaves the state, so that nothing (a rollback) destroys it.
          this.state.hosts = this.state.hosts.filter((x) => x !== host);
          await this.save();
          throw new FleetError(
            `a host named ${name} exists but runs image ${shortImage(existing.image)}, not ${shortImage(r.target)}: ` +
              'it is not adopted; remove it by hand or with stele fleet prune',
            'fatal',
          );
        }
        found = true;
        return existing;
      }
      this.emit({ type: 'host', name, status: 'creating' });
      return this.deps.provider.create({ name, image, userdata, token });
    });
    if (found) this.emit({ type: 'host', name, status: 'found' });
    host.provider = made.ref;
    if (made.address) host.address = made.address;
    host.status = 'pending';
    await this.save();
    this.emit({ type: 'host', name, status: 'created' });
  }

  async untilHealthy(h: HostRecord, deadline: number, signal: AbortSignal): Promise<void> {
    const interval = (this.settings.intervalSeconds ?? 5) * 1000;
    let last = 'no address yet';
    for (;;) {
      if (signal.aborted) return;
      if (!h.address) {
        const address = await this.call(`find the address of ${h.name}`, () => this.deps.provider.address(h));
        if (address) {
          h.address = address;
          await this.save();
        }
      }
      if (h.address) {
        const res = await this.deps.health.check(h);
        if (signal.aborted) return;
        this.emit({ type: 'health', name: h.name, ok: res.ok, detail: res.detail });
        if (res.ok) {
          if (h.status === 'pending') {
            h.status = 'live';
            await this.save();
            this.emit({ type: 'host', name: h.name, status: 'live' });
          }
          return;
        }
        last = res.detail;
      }
      if (this.deps.clock.now() >= deadline) {
        throw new HealthFailure(
          `${h.name} did not pass its health checks in ${this.settings.healthTimeoutSeconds} s: ${last}`,
        );
      }
      await this.deps.clock.sleep(Math.min(interval, Math.max(0, deadline - this.deps.clock.now())));
    }
  }

  /**
   * Drains, destroys and removes a host. Its steps are retried (any error but the user's);
   * when they keep failing the host stays `retiring` with the error, for the next run.
   */
  async retire(h: HostRecord): Promise<boolean> {
    if (h.status !== 'retiring') {
      h.status = 'retiring';
      await this.save();
      this.emit({ type: 'host', name: h.name, status: 'retiring' });
    }
    const again = (e: unknown): ErrorKind =>
      e instanceof StateError ? 'fatal' : classify(e) === 'user' ? 'user' : 'retryable';
    try {
      const o = this.deps.orchestrator;
      if (o) await this.call(`drain ${h.name}`, () => o.drain(h), { classify: again, attempts: 4 });
      await this.call(`destroy ${h.name}`, () => this.deps.provider.destroy(h), { classify: again, attempts: 4 });
      if (o)
        await this.call(`remove ${h.name} from the orchestrator`, () => o.remove(h), { classify: again, attempts: 4 });
    } catch (err) {
      if (err instanceof StateError) throw err;
      h.error = `retire failed: ${messageOf(err)}`;
      await this.save();
      this.emit({ type: 'host', name: h.name, status: 'retire-failed', detail: h.error });
      return false;
    }
    this.state.hosts = this.state.hosts.filter((x) => x !== h);
    await this.save();
    this.emit({ type: 'host', name: h.name, status: 'removed' });
    return true;
  }

  /** Retires `names` concurrently; the names that could not be retired. */
  async retireAll(names: string[]): Promise<string[]> {
    const failed: string[] = [];
    await bounded(names, this.limit, async (name) => {
      const h = this.state.hosts.find((x) => x.name === name);
      if (!h) return; // retired by the run that died
      if (!(await this.retire(h))) failed.push(name);
    });
    return failed;
  }

  async step(step: Step): Promise<void> {
    switch (step.kind) {
      case 'create': {
        const o = this.deps.orchestrator;
        const join = o ? await this.call('read the join data', () => o.joinUserdata()) : {};
        await bounded(step.hosts, this.limit, (name) => this.create(name, join));
        return;
      }
      case 'await-healthy': {
        const deadline = this.deps.clock.now() + this.settings.healthTimeoutSeconds * 1000;
        // The first host to fail stops the others' polling.
        const stop = new AbortController();
        const results = await Promise.allSettled(
          step.hosts.map((name) =>
            this.untilHealthy(this.host(name), deadline, stop.signal).catch((err: unknown) => {
              stop.abort();
              throw err;
            }),
          ),
        );
        const bad = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
        if (bad) throw bad.reason;
        return;
      }
      case 'bake': {
        const end = this.deps.clock.now() + step.seconds * 1000;
        const interval = (this.settings.intervalSeconds ?? 5) * 1000;
        for (;;) {
          const results = await Promise.all(
            step.hosts.map(async (name) => ({ name, res: await this.deps.health.check(this.host(name)) })),
          );
          for (const { name, res } of results) {
            this.emit({ type: 'health', name, ok: res.ok, detail: res.detail });
            if (!res.ok) throw new HealthFailure(`${name} failed a health check while baking: ${res.detail}`);
          }
          const left = end - this.deps.clock.now();
          if (left <= 0) return;
          await this.deps.clock.sleep(Math.min(interval, left));
        }
      }
      case 'retire': {
        const failed = await this.retireAll(step.hosts);
        if (failed.length) {
          const message = `could not retire ${failed.join(', ')} (they stay 'retiring'; the next rollout or 'stele fleet prune' retries)`;
          this.r.warnings = [...(this.r.warnings ?? []), message];
          await this.save();
          this.emit({ type: 'warning', message });
        }
        return;
      }
    }
  }

  /**
   * The hosts of the current rollout that have not passed every check of their batch (and any
   * half-made one): removed. Hosts of earlier batches that passed stay; old hosts already being
   * retired are retired to the end.
   */
  async undoUncommitted(): Promise<string[]> {
    const committed = committedHosts(this.r);
    const undo = this.state.hosts.filter((h) => h.generation === this.r.generation && !committed.has(h.name));
    await bounded(undo, this.limit, async (h) => {
      if (h.status === 'creating') {
        const there = await this.call(`find ${h.name}`, () => this.deps.provider.find(h.name));
        if (!there) {
          this.state.hosts = this.state.hosts.filter((x) => x !== h);
          await this.save();
          return;
        }
      }
      await this.retire(h);
    });
    const retiring = this.state.hosts.filter((x) => x.status === 'retiring' && !undo.includes(x)).map((x) => x.name);
    await this.retireAll(retiring);
    return undo.map((h) => h.name);
  }

  /** New hosts got a join secret in their user data: replace it now that they have joined. */
  async rotate(): Promise<void> {
    const o = this.deps.orchestrator;
    if (!o || !this.r.steps.some((s) => s.kind === 'create' && s.status !== 'pending')) return;
    try {
      await this.call('rotate the join secret', () => o.rotateJoinSecret());
    } catch (err) {
      const message = `could not rotate the orchestrator's join secret: ${messageOf(err)}`;
      this.r.warnings = [...(this.r.warnings ?? []), message];
      await this.save();
      this.emit({ type: 'warning', message });
    }
  }

  async run(): Promise<FleetState> {
    const { r, state } = this;
    for (const [index, step] of r.steps.entries()) {
      if (step.status === 'done') continue;
      step.status = 'running';
      await this.save();
      this.emit({ type: 'step', index, step, status: 'running' });
      try {
        await this.step(step);
      } catch (err) {
        if (err instanceof StateError) throw err;
        const kind = err instanceof HealthFailure ? 'fatal' : classify(err);
        if (kind !== 'fatal') {
          throw new RolloutInterrupted(
            `${messageOf(err)}: the rollout is recorded; run 'stele fleet rollout' again to resume, ` +
              "or 'stele fleet rollback' to undo it",
            kind,
            { cause: err },
          );
        }
        const reason = messageOf(err);
        if (this.settings.rollback === 'manual') {
          finish(state, r, 'stopped', this.deps.clock.now(), reason);
          await this.save();
          throw new RolloutError(
            `${reason}; stopped (rollback: manual): run 'stele fleet rollback' to undo, or 'stele fleet rollout --resume' to retry`,
            'stopped',
          );
        }
        const undone = await this.undoUncommitted();
        await this.rotate();
        finish(state, r, 'rolled-back', this.deps.clock.now(), reason);
        await this.save();
        this.emit({ type: 'rollback', reason, hosts: undone });
        throw new RolloutError(`${reason}; rolled back: removed ${undone.join(', ') || 'nothing'}`, 'rolled-back');
      }
      step.status = 'done';
      await this.save();
      this.emit({ type: 'step', index, step, status: 'done' });
    }
    await this.rotate();
    finish(state, r, 'done', this.deps.clock.now());
    await this.save();
    return state;
  }
}

function run(settings: RolloutSettings, deps: RolloutDeps): Promise<FleetState> {
  return new Run(settings, deps).run();
}

/**
 * Undoes the state's rollout (running, or stopped by a failed check with rollback: manual): the
 * hosts it made that have not passed their checks are removed.
 */
export async function rollbackRollout(
  settings: Pick<RolloutSettings, 'concurrency'>,
  deps: RolloutDeps,
  reason = 'rolled back by hand',
): Promise<FleetState> {
  const state = deps.journal.state;
  const r = state.rollout;
  if (!r || (r.phase !== 'running' && r.phase !== 'stopped')) throw new Error('no rollout to roll back');
  const runner = new Run({ healthTimeoutSeconds: 0, rollback: 'auto', ...settings }, deps);
  const undone = await runner.undoUncommitted();
  await runner.rotate();
  finish(state, r, 'rolled-back', deps.clock.now(), r.phase === 'stopped' ? (r.reason ?? reason) : reason);
  await deps.journal.save();
  deps.onEvent?.({ type: 'rollback', reason, hosts: undone });
  return state;
}

/** Retires hosts outside any rollout (leaked ones adopted for removal, or ones left `retiring`). */
export async function retireHosts(
  names: string[],
  settings: Pick<RolloutSettings, 'concurrency'>,
  deps: RolloutDeps,
): Promise<string[]> {
  const runner = new Run({ healthTimeoutSeconds: 0, rollback: 'auto', ...settings }, deps);
  return runner.retireAll(names);
}
