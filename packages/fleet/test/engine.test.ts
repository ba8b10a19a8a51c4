// The rollout engine over fake ports (the real providers have contract and end-to-end tests of
// their own): what it asks of the world, in which order, what it records, and how it recovers.
import { describe, expect, it } from 'vitest';
import {
  type Clock,
  type CreateRequest,
  emptyState,
  FleetError,
  type FleetState,
  type HealthChecker,
  type HostRecord,
  type Orchestrator,
  type Plan,
  type ProvidedHost,
  type Provider,
  type PublishedImage,
  planRollout,
  type RolloutDeps,
  RolloutError,
  RolloutInterrupted,
  type RolloutSettings,
  refresh,
  resumeRollout,
  rollbackRollout,
  StateError,
  type StateJournal,
  startRollout,
  type UserData,
} from '../src/index.ts';

const OLD = 'sha256:old';
const NEW = 'sha256:new';
const IMAGE: PublishedImage = { identity: NEW, format: 'kernel+initrd', ref: { dir: '/images/new' } };

class World implements Provider, Orchestrator, HealthChecker, Clock {
  readonly bootFormat = 'kernel+initrd';
  t = 0;
  vms = new Map<string, { image: string; userdata: UserData; token: string }>();
  log: string[] = [];
  saved: FleetState;
  /** Image identity the next created VM runs (what the provider was told to boot). */
  unhealthy = new Set<string>();
  /** Throws at the n-th save from now (a crash between two writes). */
  crashAtSave = 0;
  saves = 0;
  creates = 0;
  rotations = 0;
  /** Errors the next calls of a method throw, in order. */
  faults: Partial<Record<'create' | 'destroy' | 'drain', unknown[]>> = {};
  /** Create calls in flight now, and the most at once. */
  inFlight = 0;
  peak = 0;

  constructor(start: FleetState) {
    this.saved = structuredClone(start);
  }
  private fault(kind: 'create' | 'destroy' | 'drain') {
    const next = this.faults[kind]?.shift();
    if (next) throw next;
  }
  // Provider
  async findPublished() {
    return IMAGE;
  }
  async publish() {
    return { ...IMAGE, reused: true };
  }
  async listPublished() {
    return [IMAGE];
  }
  async unpublish() {
    return 'removed' as const;
  }
  async create(req: CreateRequest): Promise<ProvidedHost> {
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    await new Promise((r) => setTimeout(r, 1));
    this.inFlight--;
    this.fault('create');
    this.creates++;
    this.vms.set(req.name, { image: req.image.identity, userdata: req.userdata, token: req.token });
    this.log.push(`create ${req.name}`);
    return { name: req.name, image: req.image.identity, ref: { id: `vm-${req.name}` } };
  }
  async find(name: string): Promise<ProvidedHost | undefined> {
    const vm = this.vms.get(name);
    return vm ? { name, image: vm.image, ref: { id: `vm-${name}` } } : undefined;
  }
  async list(): Promise<ProvidedHost[]> {
    return [...this.vms].map(([name, vm]) => ({ name, image: vm.image, ref: { id: `vm-${name}` } }));
  }
  async address(h: HostRecord) {
    return this.vms.has(h.name) ? `addr-${h.name}` : undefined;
  }
  async endpoint(h: HostRecord, port: number) {
    return this.vms.has(h.name) ? { host: `addr-${h.name}`, port } : undefined;
  }
  async destroy(h: HostRecord) {
    this.fault('destroy');
    this.log.push(`destroy ${h.name}`);
    this.vms.delete(h.name);
  }
  async close() {}
  // Orchestrator
  async joinUserdata(): Promise<UserData> {
    return { swarm: { entries: { token: { content: `SWMTKN-${this.rotations}` } } } };
  }
  async ready(h: HostRecord) {
    return { ok: this.vms.has(h.name), detail: 'node' };
  }
  async drain(h: HostRecord) {
    this.fault('drain');
    this.log.push(`drain ${h.name}`);
  }
  async remove(h: HostRecord) {
    this.log.push(`remove ${h.name}`);
  }
  async rotateJoinSecret() {
    this.rotations++;
    this.log.push('rotate');
  }
  // HealthChecker
  async check(h: HostRecord) {
    const ok = this.vms.has(h.name) && !this.unhealthy.has(h.name);
    return { ok, detail: ok ? 'ok' : 'ssh: connection refused' };
  }
  // Clock
  now() {
    return this.t;
  }
  async sleep(ms: number) {
    this.t += ms;
  }
  /** A command's hold of the state: the last saved state, written back on save (or "killed"). */
  journal(): StateJournal {
    const state = structuredClone(this.saved);
    if (!state.lineage) state.lineage = 'lineage-1';
    return {
      state,
      save: async () => {
        this.saves++;
        if (this.crashAtSave > 0 && --this.crashAtSave === 0) throw new StateError('killed');
        state.serial++;
        this.saved = structuredClone(state);
      },
    };
  }
  deps(): RolloutDeps {
    return {
      provider: this,
      orchestrator: this,
      health: this,
      clock: this,
      journal: this.journal(),
      retry: { attempts: 3, baseMs: 10, maxMs: 10 },
    };
  }
}

function oldFleet(n: number): FleetState {
  const s: FleetState = { ...emptyState('f'), lineage: 'lineage-1', generation: 1 };
  for (let i = 1; i <= n; i++) {
    s.hosts.push({ name: `f-1-${i}`, image: OLD, generation: 1, status: 'live', createdAt: '' });
  }
  return s;
}

function world(n: number) {
  const w = new World(oldFleet(n));
  for (const h of w.saved.hosts) w.vms.set(h.name, { image: OLD, userdata: {}, token: '' });
  return w;
}

const plan = (w: World, hosts: number, bakeSeconds = 30, maxSurge = 1): Plan =>
  planRollout({ fleet: 'f', hosts, maxSurge, minHealthy: hosts, bakeSeconds }, w.saved, NEW);
const settings: RolloutSettings = { healthTimeoutSeconds: 60, intervalSeconds: 5, rollback: 'auto', image: IMAGE };

describe('rollout engine', () => {
  it('replaces every host blue-green: new one healthy and baked before an old one is drained, destroyed, removed; then the join secret is rotated', async () => {
    const w = world(2);
    const state = await startRollout(plan(w, 2), settings, w.deps());
    expect(w.log).toEqual([
      'create f-2-1',
      'drain f-1-1',
      'destroy f-1-1',
      'remove f-1-1',
      'create f-2-2',
      'drain f-1-2',
      'destroy f-1-2',
      'remove f-1-2',
      'rotate',
    ]);
    expect([...w.vms.keys()]).toEqual(['f-2-1', 'f-2-2']);
    expect(state.hosts.map((h) => [h.name, h.image, h.status, h.address])).toEqual([
      ['f-2-1', NEW, 'live', 'addr-f-2-1'],
      ['f-2-2', NEW, 'live', 'addr-f-2-2'],
    ]);
    expect(w.saved.rollout?.phase).toBe('done');
    expect(w.saved.history[0]).toMatchObject({ generation: 2, phase: 'done', target: NEW, from: [OLD] });
    // Each new host got its name and the orchestrator's join data, and a create token from the
    // state's lineage, recorded before the call.
    expect(w.vms.get('f-2-1')?.userdata).toMatchObject({ hostname: { content: 'f-2-1' }, swarm: expect.anything() });
    expect(w.vms.get('f-2-1')?.token).toMatch(/^[0-9a-f]{32}$/);
    expect(w.saved.hosts[0]?.token).toBe(w.vms.get('f-2-1')?.token);
    // Baking took its time: 30 s per batch at least.
    expect(w.t).toBeGreaterThanOrEqual(60_000);
  });

  it('a new host counts as live only once it passed its checks', async () => {
    const w = world(1);
    const seen: string[] = [];
    const d = w.deps();
    d.onEvent = (e) => {
      if (e.type === 'host') seen.push(`${e.name}:${e.status}:${w.saved.hosts.find((h) => h.name === e.name)?.status}`);
    };
    await startRollout(plan(w, 1), settings, d);
    expect(seen.slice(0, 3)).toEqual(['f-2-1:creating:creating', 'f-2-1:created:pending', 'f-2-1:live:live']);
  });

  it('a new host that never gets healthy is removed and the old hosts stay (rollback: auto)', async () => {
    const w = world(2);
    w.unhealthy.add('f-2-1');
    const err = await startRollout(plan(w, 2), settings, w.deps()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RolloutError);
    expect((err as Error).message).toMatch(
      /f-2-1 did not pass its health checks in 60 s: ssh: connection refused; rolled back: removed f-2-1/,
    );
    expect([...w.vms.keys()].sort()).toEqual(['f-1-1', 'f-1-2']);
    // Rolled back — and the join secret the new host saw is rotated too.
    expect(w.log).toEqual(['create f-2-1', 'drain f-2-1', 'destroy f-2-1', 'remove f-2-1', 'rotate']);
    expect(w.saved.hosts.map((h) => h.name)).toEqual(['f-1-1', 'f-1-2']);
    expect(w.saved.rollout).toMatchObject({ phase: 'rolled-back', reason: expect.stringContaining('f-2-1') });
    // The fleet can be planned again afterwards.
    expect(() => plan(w, 2)).not.toThrow();
  });

  it('a host failing while it bakes is rolled back too; earlier batches that passed stay', async () => {
    const w = world(2);
    const p = plan(w, 2);
    // f-2-2 turns unhealthy as soon as it exists.
    const create = w.create.bind(w);
    w.create = async (req) => {
      if (req.name === 'f-2-2') w.unhealthy.add(req.name);
      return create(req);
    };
    await expect(startRollout(p, settings, w.deps())).rejects.toThrow(/f-2-2 did not pass/);
    expect([...w.vms.keys()].sort()).toEqual(['f-1-2', 'f-2-1']);
    expect(w.saved.hosts.map((h) => `${h.name}:${h.image}`).sort()).toEqual(['f-1-2:sha256:old', 'f-2-1:sha256:new']);
  });

  it('rollback: manual stops with the new host kept and not live; a plain plan is refused; rollback removes it', async () => {
    const w = world(1);
    w.unhealthy.add('f-2-1');
    await expect(startRollout(plan(w, 1), { ...settings, rollback: 'manual' }, w.deps())).rejects.toThrow(
      /stopped \(rollback: manual\)/,
    );
    expect(w.vms.has('f-2-1')).toBe(true);
    expect(w.saved.rollout?.phase).toBe('stopped');
    expect(w.saved.hosts.find((h) => h.name === 'f-2-1')?.status).toBe('pending');
    // The bug this guards: a plain rollout after the stop planned "0 new, 1 retired" and
    // destroyed the only healthy host.
    expect(() => plan(w, 1)).toThrow(/stopped.*stele fleet rollback.*--resume/);
    await rollbackRollout({}, w.deps());
    expect([...w.vms.keys()]).toEqual(['f-1-1']);
    expect(w.saved.rollout?.phase).toBe('rolled-back');
    expect(w.saved.history[0]?.phase).toBe('rolled-back');
    expect(plan(w, 1).creates).toEqual(['f-3-1']);
  });

  it('a stopped rollout resumed with --resume retries its failed step and goes on', async () => {
    const w = world(1);
    w.unhealthy.add('f-2-1');
    await expect(startRollout(plan(w, 1), { ...settings, rollback: 'manual' }, w.deps())).rejects.toThrow(/stopped/);
    w.unhealthy.clear();
    const end = await resumeRollout({ ...settings, rollback: 'manual' }, w.deps());
    expect(end.rollout?.phase).toBe('done');
    expect(end.hosts.map((h) => `${h.name}:${h.status}`)).toEqual(['f-2-1:live']);
    expect(w.creates).toBe(1);
  });

  it('resumes after a crash at any save, never creating a host twice, and ends where an uninterrupted run ends', async () => {
    const reference = world(2);
    await startRollout(plan(reference, 2), settings, reference.deps());
    const total = reference.saves;
    expect(total).toBeGreaterThan(10);
    for (let crashAt = 2; crashAt <= total; crashAt++) {
      const w = world(2);
      w.crashAtSave = crashAt;
      const first = await startRollout(plan(w, 2), settings, w.deps()).catch((e: unknown) => e);
      expect((first as Error).message, `crash at save ${crashAt}`).toBe('killed');
      if (w.saved.rollout?.phase === 'running') await resumeRollout(settings, w.deps());
      expect([...w.vms.keys()], `crash at save ${crashAt}`).toEqual([...reference.vms.keys()]);
      expect(w.creates, `crash at save ${crashAt}: hosts created`).toBe(2);
      expect(w.saved.hosts.map((h) => h.name)).toEqual(reference.saved.hosts.map((h) => h.name));
      expect(w.saved.rollout?.phase).toBe('done');
    }
  });

  it('refuses a plan made before the state changed, and a second rollout while one runs', async () => {
    const w = world(1);
    const stale = plan(w, 1);
    w.saved.generation = 5;
    await expect(startRollout(stale, settings, w.deps())).rejects.toThrow(/plan again/);
    const w2 = world(1);
    const p = plan(w2, 1);
    w2.crashAtSave = 3;
    await startRollout(p, settings, w2.deps()).catch(() => undefined);
    expect(w2.saved.rollout?.phase).toBe('running');
    await expect(startRollout({ ...p, generation: 9 }, settings, w2.deps())).rejects.toThrow(/is running/);
  });

  it('creates the hosts of a batch concurrently, bounded by concurrency', async () => {
    const w = new World({ ...emptyState('f'), lineage: 'l' });
    const p = planRollout({ fleet: 'f', hosts: 6, maxSurge: 6, minHealthy: 6, bakeSeconds: 0 }, w.saved, NEW);
    await startRollout(p, { ...settings, concurrency: 4 }, w.deps());
    expect(w.creates).toBe(6);
    expect(w.peak).toBe(4);
  });

  it('retries a retryable error, then goes on', async () => {
    const w = world(1);
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    w.faults.create = [throttled, throttled];
    const retries: number[] = [];
    const d = w.deps();
    d.onEvent = (e) => {
      if (e.type === 'retry') retries.push(e.attempt);
    };
    const end = await startRollout(plan(w, 1), settings, d);
    expect(end.rollout?.phase).toBe('done');
    expect(retries).toEqual([1, 2]);
    expect(w.creates).toBe(1);
  });

  it('a retryable error that outlasts its retries leaves the rollout running, to be resumed', async () => {
    const w = world(1);
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    w.faults.create = [reset, reset, reset];
    const err = await startRollout(plan(w, 1), settings, w.deps()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RolloutInterrupted);
    expect((err as Error).message).toMatch(/socket hang up: the rollout is recorded; run 'stele fleet rollout' again/);
    expect(w.saved.rollout?.phase).toBe('running');
    const end = await resumeRollout(settings, w.deps());
    expect(end.rollout?.phase).toBe('done');
    expect(w.creates).toBe(1);
  });

  it('a fatal error in a step rolls the batch back like a failed check (auto), or stops (manual)', async () => {
    const w = world(2);
    const p = planRollout({ fleet: 'f', hosts: 2, maxSurge: 2, minHealthy: 2, bakeSeconds: 0 }, w.saved, NEW);
    // The second host of the batch cannot be made; the first was.
    let n = 0;
    const create = w.create.bind(w);
    w.create = async (req) => {
      if (++n === 2) throw new FleetError('InsufficientInstanceCapacity: no t3.small in eu-west-1a', 'fatal');
      return create(req);
    };
    const err = await startRollout(p, settings, w.deps()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RolloutError);
    expect((err as Error).message).toMatch(/InsufficientInstanceCapacity.*rolled back: removed f-2-1, f-2-2/);
    expect([...w.vms.keys()].sort()).toEqual(['f-1-1', 'f-1-2']);
    expect(w.saved.hosts.map((h) => h.name)).toEqual(['f-1-1', 'f-1-2']);

    const m = world(1);
    m.faults.create = [new FleetError('the datastore is full', 'fatal')];
    await expect(startRollout(plan(m, 1), { ...settings, rollback: 'manual' }, m.deps())).rejects.toThrow(
      /the datastore is full; stopped/,
    );
    expect(m.saved.rollout?.phase).toBe('stopped');
  });

  it('a host that cannot be destroyed stays retiring with its error; the rollout ends; the next plan retries it', async () => {
    const w = world(1);
    const fault = new FleetError('vim.fault.TaskInProgress', 'fatal');
    w.faults.destroy = [fault, fault, fault, fault];
    const d = w.deps();
    const warnings: string[] = [];
    d.onEvent = (e) => {
      if (e.type === 'warning') warnings.push(e.message);
    };
    const end = await startRollout(plan(w, 1), settings, d);
    expect(end.rollout?.phase).toBe('done');
    expect(warnings.join()).toMatch(/could not retire f-1-1/);
    const stuck = w.saved.hosts.find((h) => h.name === 'f-1-1');
    expect(stuck).toMatchObject({
      status: 'retiring',
      error: expect.stringMatching(/retire failed: vim.fault.TaskInProgress/),
    });
    // The next plan cleans it up first, and it is not counted as a host of the fleet.
    const next = planRollout({ fleet: 'f', hosts: 1, maxSurge: 1, minHealthy: 1, bakeSeconds: 0 }, w.saved, NEW);
    expect(next.steps).toEqual([{ kind: 'retire', hosts: ['f-1-1'] }]);
    expect(next.cleanup).toEqual(['f-1-1']);
    await startRollout(next, settings, w.deps());
    expect(w.saved.hosts.map((h) => h.name)).toEqual(['f-2-1']);
    expect(w.vms.has('f-1-1')).toBe(false);
  });

  it('does not adopt a same-named host that runs another image', async () => {
    const w = world(1);
    w.vms.set('f-2-1', { image: 'sha256:other', userdata: {}, token: '' });
    await expect(startRollout(plan(w, 1), settings, w.deps())).rejects.toThrow(
      /a host named f-2-1 exists but runs image other.*not adopted.*rolled back/,
    );
    expect(w.vms.get('f-2-1')?.image).toBe('sha256:other');
  });

  it('a lost host is replaced; leaked hosts are reported and their generation never reused', async () => {
    const w = world(2);
    w.vms.delete('f-1-2'); // its VM died
    w.vms.set('f-7-1', { image: OLD, userdata: {}, token: '' }); // made by a state that was lost
    const seen = refresh(w.saved, await w.list());
    expect(seen.lost).toEqual(['f-1-2']);
    expect(seen.leaked).toEqual(['f-7-1']);
    const p = planRollout({ fleet: 'f', hosts: 2, maxSurge: 1, minHealthy: 2, bakeSeconds: 0 }, w.saved, OLD, seen);
    expect(p.generation).toBe(8);
    expect(p.steps).toEqual([
      { kind: 'retire', hosts: ['f-1-2'] },
      { kind: 'create', hosts: ['f-8-1'] },
      { kind: 'await-healthy', hosts: ['f-8-1'] },
    ]);
    expect(p.leaked).toEqual(['f-7-1']);
    await startRollout(p, { ...settings, image: { ...IMAGE, identity: OLD } }, w.deps());
    expect(w.saved.hosts.map((h) => h.name).sort()).toEqual(['f-1-1', 'f-8-1']);
    expect(w.vms.has('f-7-1')).toBe(true); // not touched
  });
});
