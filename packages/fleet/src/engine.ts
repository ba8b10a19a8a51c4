// Runs a plan against the real world through the ports, writing every move to the state first:
// a host is recorded as `creating` before the provider is asked for it and `retiring` before it
// is drained, and each step is marked done only when finished. A run that dies (crash, kill,
// provider error) leaves the rollout `running`; running again resumes at the first step not
// done, finding hosts a dead run had already asked for. A failed health check undoes the
// batch that failed (rollback: auto) or stops there (manual) for `stele fleet rollback`.
import type { Plan } from './plan.ts';
import type { Clock, HealthChecker, Orchestrator, Provider, StateStore } from './ports.ts';
import type { FleetState, HostRecord, RolloutRecord, Step } from './types.ts';

export interface RolloutSettings {
  healthTimeoutSeconds: number;
  /** Seconds between health checks (default 5). */
  intervalSeconds?: number;
  rollback: 'auto' | 'manual';
  /** User data every new host gets (its hostname and the orchestrator's join data are added). */
  userdata?: Record<string, unknown>;
}

export interface RolloutDeps {
  provider: Provider;
  orchestrator?: Orchestrator;
  health: HealthChecker;
  clock: Clock;
  store: StateStore;
  onEvent?: (e: RolloutEvent) => void;
}

export type RolloutEvent =
  | { type: 'step'; index: number; step: Step; status: 'running' | 'done' }
  | { type: 'host'; name: string; status: 'creating' | 'found' | 'live' | 'retiring' | 'removed'; detail?: string }
  | { type: 'health'; name: string; ok: boolean; detail: string }
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

class HealthFailure extends Error {}

const MAX_HISTORY = 20;

function finish(state: FleetState, r: RolloutRecord, phase: RolloutRecord['phase'], now: number, reason?: string) {
  r.phase = phase;
  r.endedAt = new Date(now).toISOString();
  if (reason) r.reason = reason;
  const { steps: _steps, ...summary } = r;
  state.history = [summary, ...state.history].slice(0, MAX_HISTORY);
}

/** Starts `plan` (the state must have no rollout running) and runs it to the end. */
export async function startRollout(plan: Plan, settings: RolloutSettings, deps: RolloutDeps): Promise<FleetState> {
  return deps.store.locked(async () => {
    const state = await deps.store.load();
    if (state.rollout?.phase === 'running') {
      throw new Error(`a rollout (generation ${state.rollout.generation}) is already running: resume it`);
    }
    if (plan.generation !== state.generation + 1) {
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
    await deps.store.save(state);
    return run(state, settings, deps);
  });
}

/** Resumes the running rollout of the state (after a crash or an error). */
export async function resumeRollout(settings: RolloutSettings, deps: RolloutDeps): Promise<FleetState> {
  return deps.store.locked(async () => {
    const state = await deps.store.load();
    if (state.rollout?.phase !== 'running') throw new Error('no rollout is running');
    return run(state, settings, deps);
  });
}

async function run(state: FleetState, settings: RolloutSettings, deps: RolloutDeps): Promise<FleetState> {
  const r = state.rollout as RolloutRecord;
  const save = () => deps.store.save(state);
  for (const [index, step] of r.steps.entries()) {
    if (step.status === 'done') continue;
    step.status = 'running';
    await save();
    deps.onEvent?.({ type: 'step', index, step, status: 'running' });
    try {
      await runStep(state, step, settings, deps);
    } catch (err) {
      if (!(err instanceof HealthFailure)) throw err; // the rollout stays running: resume later
      const reason = err.message;
      if (settings.rollback === 'manual') {
        finish(state, r, 'stopped', deps.clock.now(), reason);
        await save();
        throw new RolloutError(`${reason}; stopped (rollback: manual): run 'stele fleet rollback' to undo`, 'stopped');
      }
      const undone = await undoUncommitted(state, deps);
      finish(state, r, 'rolled-back', deps.clock.now(), reason);
      await save();
      deps.onEvent?.({ type: 'rollback', reason, hosts: undone });
      throw new RolloutError(`${reason}; rolled back: removed ${undone.join(', ') || 'nothing'}`, 'rolled-back');
    }
    step.status = 'done';
    await save();
    deps.onEvent?.({ type: 'step', index, step, status: 'done' });
  }
  finish(state, r, 'done', deps.clock.now());
  await save();
  return state;
}

function host(state: FleetState, name: string): HostRecord {
  const h = state.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`the state has no host ${name}`);
  return h;
}

async function runStep(state: FleetState, step: Step, settings: RolloutSettings, deps: RolloutDeps): Promise<void> {
  const r = state.rollout as RolloutRecord;
  const save = () => deps.store.save(state);
  switch (step.kind) {
    case 'create': {
      const join = deps.orchestrator ? await deps.orchestrator.joinUserdata() : {};
      for (const name of step.hosts) {
        let h = state.hosts.find((x) => x.name === name);
        if (!h) {
          h = {
            name,
            image: r.target,
            generation: r.generation,
            status: 'creating',
            createdAt: new Date(deps.clock.now()).toISOString(),
          };
          state.hosts.push(h);
          await save();
        }
        if (h.status !== 'creating') continue;
        let made = await deps.provider.find(name);
        deps.onEvent?.({ type: 'host', name, status: made ? 'found' : 'creating' });
        made ??= await deps.provider.create(name, {
          ...settings.userdata,
          ...join,
          hostname: { content: name },
        });
        h.provider = made.ref;
        if (made.address) h.address = made.address;
        h.status = 'live';
        await save();
        deps.onEvent?.({ type: 'host', name, status: 'live' });
      }
      return;
    }
    case 'await-healthy': {
      const deadline = deps.clock.now() + settings.healthTimeoutSeconds * 1000;
      // The first host to fail stops the others' polling: nothing may touch the state after.
      const stop = new AbortController();
      await Promise.all(
        step.hosts.map((name) =>
          untilHealthy(state, host(state, name), deadline, settings, deps, stop.signal).catch((err: unknown) => {
            stop.abort();
            throw err;
          }),
        ),
      );
      return;
    }
    case 'bake': {
      const end = deps.clock.now() + step.seconds * 1000;
      const interval = (settings.intervalSeconds ?? 5) * 1000;
      for (;;) {
        for (const name of step.hosts) {
          const res = await deps.health.check(host(state, name));
          deps.onEvent?.({ type: 'health', name, ok: res.ok, detail: res.detail });
          if (!res.ok) throw new HealthFailure(`${name} failed a health check while baking: ${res.detail}`);
        }
        const left = end - deps.clock.now();
        if (left <= 0) return;
        await deps.clock.sleep(Math.min(interval, left));
      }
    }
    case 'retire': {
      for (const name of step.hosts) {
        const h = state.hosts.find((x) => x.name === name);
        if (!h) continue; // retired by the run that died
        await retireHost(state, h, deps);
      }
      return;
    }
  }
}

async function untilHealthy(
  state: FleetState,
  h: HostRecord,
  deadline: number,
  settings: RolloutSettings,
  deps: RolloutDeps,
  signal: AbortSignal,
): Promise<void> {
  const interval = (settings.intervalSeconds ?? 5) * 1000;
  let last = 'no address yet';
  for (;;) {
    if (signal.aborted) return;
    if (!h.address) {
      const address = await deps.provider.address(h);
      if (address) {
        h.address = address;
        await deps.store.save(state);
      }
    }
    if (h.address) {
      const res = await deps.health.check(h);
      deps.onEvent?.({ type: 'health', name: h.name, ok: res.ok, detail: res.detail });
      if (res.ok) return;
      last = res.detail;
    }
    if (deps.clock.now() >= deadline) {
      throw new HealthFailure(
        `${h.name} did not pass its health checks in ${settings.healthTimeoutSeconds} s: ${last}`,
      );
    }
    await deps.clock.sleep(Math.min(interval, Math.max(0, deadline - deps.clock.now())));
  }
}

async function retireHost(state: FleetState, h: HostRecord, deps: RolloutDeps): Promise<void> {
  if (h.status !== 'retiring') {
    h.status = 'retiring';
    await deps.store.save(state);
    deps.onEvent?.({ type: 'host', name: h.name, status: 'retiring' });
  }
  await deps.orchestrator?.drain(h);
  await deps.provider.destroy(h);
  await deps.orchestrator?.remove(h);
  state.hosts = state.hosts.filter((x) => x !== h);
  await deps.store.save(state);
  deps.onEvent?.({ type: 'host', name: h.name, status: 'removed' });
}

/**
 * The hosts of the current rollout that have not passed every check of their batch (and any
 * half-made one): removed. Hosts of earlier batches that passed stay; old hosts already being
 * retired are retired to the end.
 */
async function undoUncommitted(state: FleetState, deps: RolloutDeps): Promise<string[]> {
  const r = state.rollout as RolloutRecord;
  const committed = new Set<string>();
  const checked = new Map<string, boolean>();
  for (const s of r.steps) {
    if (s.kind === 'await-healthy' || s.kind === 'bake') {
      for (const n of s.hosts) checked.set(n, (checked.get(n) ?? true) && s.status === 'done');
    }
  }
  for (const [n, ok] of checked) if (ok) committed.add(n);
  const undo = state.hosts.filter((h) => h.generation === r.generation && !committed.has(h.name));
  for (const h of undo) {
    if (h.status === 'creating' && !(await deps.provider.find(h.name))) {
      state.hosts = state.hosts.filter((x) => x !== h);
      await deps.store.save(state);
      continue;
    }
    await retireHost(state, h, deps);
  }
  for (const h of state.hosts.filter((x) => x.status === 'retiring')) await retireHost(state, h, deps);
  return undo.map((h) => h.name);
}

/**
 * Undoes the state's rollout (running, or stopped by a failed check with rollback: manual): the
 * hosts it made that have not passed their checks are removed.
 */
export async function rollbackRollout(deps: RolloutDeps, reason = 'rolled back by hand'): Promise<FleetState> {
  return deps.store.locked(async () => {
    const state = await deps.store.load();
    const r = state.rollout;
    if (!r || (r.phase !== 'running' && r.phase !== 'stopped')) throw new Error('no rollout to roll back');
    const undone = await undoUncommitted(state, deps);
    if (r.phase === 'running') finish(state, r, 'rolled-back', deps.clock.now(), reason);
    else {
      r.phase = 'rolled-back';
      state.history = state.history.map((h) => (h.generation === r.generation ? { ...h, phase: 'rolled-back' } : h));
    }
    await deps.store.save(state);
    deps.onEvent?.({ type: 'rollback', reason, hosts: undone });
    return state;
  });
}
