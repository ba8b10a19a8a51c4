// The rollout engine over fake ports (the real providers have end-to-end tests of their own):
// what it asks of the world, in which order, what it records, and how it recovers.
import { describe, expect, it } from 'vitest';
import {
  type Clock,
  emptyState,
  type FleetState,
  type HealthChecker,
  type HostRecord,
  type Orchestrator,
  type Provider,
  planRollout,
  type RolloutDeps,
  RolloutError,
  resumeRollout,
  rollbackRollout,
  type StateStore,
  startRollout,
} from '../src/index.ts';

const OLD = 'sha256:old';
const NEW = 'sha256:new';

class World implements Provider, Orchestrator, HealthChecker, Clock, StateStore {
  t = 0;
  vms = new Map<string, { image: string; userdata: Record<string, unknown> }>();
  log: string[] = [];
  saved: FleetState;
  /** Image identity the next created VM runs (what the provider was told to boot). */
  booting = NEW;
  unhealthy = new Set<string>();
  /** Throws at the n-th save from now (a crash between two writes). */
  crashAtSave = 0;
  creates = 0;

  constructor(start: FleetState) {
    this.saved = structuredClone(start);
  }
  // Provider
  async create(name: string, userdata: Record<string, unknown>) {
    this.creates++;
    this.vms.set(name, { image: this.booting, userdata });
    this.log.push(`create ${name}`);
    return { ref: { id: `vm-${name}` } };
  }
  async find(name: string) {
    return this.vms.has(name) ? { ref: { id: `vm-${name}` } } : undefined;
  }
  async address(h: HostRecord) {
    return this.vms.has(h.name) ? `addr-${h.name}` : undefined;
  }
  async endpoint(h: HostRecord, port: number) {
    return this.vms.has(h.name) ? { host: `addr-${h.name}`, port } : undefined;
  }
  async destroy(h: HostRecord) {
    this.log.push(`destroy ${h.name}`);
    this.vms.delete(h.name);
  }
  // Orchestrator
  async joinUserdata() {
    return { swarm: { entries: { token: { content: 'SWMTKN' } } } };
  }
  async drain(h: HostRecord) {
    this.log.push(`drain ${h.name}`);
  }
  async remove(h: HostRecord) {
    this.log.push(`remove ${h.name}`);
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
  // StateStore
  async load() {
    return structuredClone(this.saved);
  }
  async save(s: FleetState) {
    if (this.crashAtSave > 0 && --this.crashAtSave === 0) throw new Error('killed');
    this.saved = structuredClone(s);
  }
  async locked<T>(fn: () => Promise<T>) {
    return fn();
  }
  deps(): RolloutDeps {
    return { provider: this, orchestrator: this, health: this, clock: this, store: this };
  }
}

function oldFleet(n: number): FleetState {
  const s: FleetState = { ...emptyState('f'), generation: 1 };
  for (let i = 1; i <= n; i++) {
    s.hosts.push({ name: `f-1-${i}`, image: OLD, generation: 1, status: 'live', createdAt: '' });
  }
  return s;
}

function world(n: number) {
  const w = new World(oldFleet(n));
  for (const h of w.saved.hosts) w.vms.set(h.name, { image: OLD, userdata: {} });
  return w;
}

const plan = (w: World, hosts: number, bakeSeconds = 30) =>
  planRollout({ fleet: 'f', hosts, maxSurge: 1, minHealthy: hosts, bakeSeconds }, w.saved, NEW);
const settings = { healthTimeoutSeconds: 60, intervalSeconds: 5, rollback: 'auto' as const };

describe('rollout engine', () => {
  it('replaces every host blue-green: new one healthy and baked before an old one is drained, destroyed, removed', async () => {
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
    ]);
    expect([...w.vms.keys()]).toEqual(['f-2-1', 'f-2-2']);
    expect(state.hosts.map((h) => [h.name, h.image, h.status, h.address])).toEqual([
      ['f-2-1', NEW, 'live', 'addr-f-2-1'],
      ['f-2-2', NEW, 'live', 'addr-f-2-2'],
    ]);
    expect(w.saved.rollout?.phase).toBe('done');
    expect(w.saved.history[0]).toMatchObject({ generation: 2, phase: 'done', target: NEW, from: [OLD] });
    // Each new host got its name and the orchestrator's join data.
    expect(w.vms.get('f-2-1')?.userdata).toMatchObject({ hostname: { content: 'f-2-1' }, swarm: expect.anything() });
    // Baking took its time: 30 s per batch at least.
    expect(w.t).toBeGreaterThanOrEqual(60_000);
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
    expect(w.log).toEqual(['create f-2-1', 'drain f-2-1', 'destroy f-2-1', 'remove f-2-1']);
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
    w.create = async (name, ud) => {
      if (name === 'f-2-2') w.unhealthy.add(name);
      return create(name, ud);
    };
    await expect(startRollout(p, settings, w.deps())).rejects.toThrow(/f-2-2 did not pass/);
    expect([...w.vms.keys()].sort()).toEqual(['f-1-2', 'f-2-1']);
    expect(w.saved.hosts.map((h) => `${h.name}:${h.image}`).sort()).toEqual(['f-1-2:sha256:old', 'f-2-1:sha256:new']);
  });

  it('rollback: manual stops with the new host kept; stele fleet rollback removes it', async () => {
    const w = world(1);
    w.unhealthy.add('f-2-1');
    await expect(startRollout(plan(w, 1), { ...settings, rollback: 'manual' }, w.deps())).rejects.toThrow(
      /stopped \(rollback: manual\)/,
    );
    expect(w.vms.has('f-2-1')).toBe(true);
    expect(w.saved.rollout?.phase).toBe('stopped');
    await rollbackRollout(w.deps());
    expect([...w.vms.keys()]).toEqual(['f-1-1']);
    expect(w.saved.rollout?.phase).toBe('rolled-back');
  });

  it('resumes after a crash at any save, never creating a host twice, and ends where an uninterrupted run ends', async () => {
    const reference = world(2);
    await startRollout(plan(reference, 2), settings, reference.deps());
    const saves = (() => {
      let n = 0;
      const probe = world(2);
      const save = probe.save.bind(probe);
      probe.save = async (s) => {
        n++;
        return save(s);
      };
      return startRollout(plan(probe, 2), settings, probe.deps()).then(() => n);
    })();
    const total = await saves;
    expect(total).toBeGreaterThan(10);
    for (let crashAt = 2; crashAt <= total; crashAt++) {
      const w = world(2);
      w.crashAtSave = crashAt;
      const first = await startRollout(plan(w, 2), settings, w.deps()).catch((e: unknown) => e);
      expect((first as Error).message, `crash at save ${crashAt}`).toBe('killed');
      await resumeRollout(settings, w.deps());
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
    w2.crashAtSave = 3;
    await startRollout(plan(w2, 1), settings, w2.deps()).catch(() => undefined);
    expect(w2.saved.rollout?.phase).toBe('running');
    const again = { ...plan({ saved: { ...w2.saved, rollout: undefined } } as unknown as World, 1) };
    await expect(startRollout(again, settings, w2.deps())).rejects.toThrow(/already running/);
  });
});
