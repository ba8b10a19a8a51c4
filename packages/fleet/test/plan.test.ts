import { describe, expect, it } from 'vitest';
import { emptyState, type FleetState, formatPlan, type HostRecord, PlanError, planRollout } from '../src/index.ts';

const OLD = 'sha256:old';
const NEW = 'sha256:new';

function state(images: string[], extra: Partial<FleetState> = {}): FleetState {
  const hosts: HostRecord[] = images.map((image, i) => ({
    name: `f-1-${i + 1}`,
    image,
    generation: 1,
    status: 'live',
    createdAt: '2026-01-01T00:00:00Z',
  }));
  return { ...emptyState('f'), generation: 1, hosts, ...extra };
}

const settings = (hosts: number, maxSurge = 1, minHealthy = hosts, bakeSeconds = 60) => ({
  fleet: 'f',
  hosts,
  maxSurge,
  minHealthy,
  bakeSeconds,
});

/** Plays a plan's steps on a count of live hosts, independently of the planner. */
function play(start: FleetState, steps: ReturnType<typeof planRollout>['steps']) {
  const live = new Map(start.hosts.map((h) => [h.name, h.image]));
  let peak = live.size;
  let low = live.size;
  for (const s of steps) {
    if (s.kind === 'create') for (const n of s.hosts) live.set(n, NEW);
    if (s.kind === 'retire') {
      for (const n of s.hosts) {
        expect(live.has(n), `${n} retired but not live`).toBe(true);
        live.delete(n);
      }
    }
    peak = Math.max(peak, live.size);
    low = Math.min(low, live.size);
  }
  return { live, peak, low };
}

describe('planRollout', () => {
  it('a first rollout starts every host and retires nothing', () => {
    const p = planRollout(settings(3), emptyState('f'), NEW);
    expect(p.steps).toEqual([
      { kind: 'create', hosts: ['f-1-1', 'f-1-2', 'f-1-3'] },
      { kind: 'await-healthy', hosts: ['f-1-1', 'f-1-2', 'f-1-3'] },
    ]);
    expect(p.generation).toBe(1);
  });

  it('nothing to do when every host runs the target', () => {
    const p = planRollout(settings(3), state([NEW, NEW, NEW]), NEW);
    expect(p.steps).toEqual([]);
    expect(formatPlan(p)).toMatch(/nothing to do/);
  });

  it('default blue-green: one new host at a time, baked, then one old host retired, oldest first', () => {
    const p = planRollout(settings(3), state([OLD, OLD, OLD]), NEW);
    expect(p.steps.map((s) => `${s.kind}:${s.hosts.join(',')}`)).toEqual([
      'create:f-2-1',
      'await-healthy:f-2-1',
      'bake:f-2-1',
      'retire:f-1-1',
      'create:f-2-2',
      'await-healthy:f-2-2',
      'bake:f-2-2',
      'retire:f-1-2',
      'create:f-2-3',
      'await-healthy:f-2-3',
      'bake:f-2-3',
      'retire:f-1-3',
    ]);
    expect(formatPlan(p)).toContain('old → sha256:new'.replace('sha256:', ''));
  });

  it('maxSurge 0 retires first (as far as minHealthy allows), then replaces', () => {
    const p = planRollout(settings(3, 0, 2), state([OLD, OLD, OLD]), NEW);
    expect(p.steps[0]).toEqual({ kind: 'retire', hosts: ['f-1-1'] });
    const { live, low } = play(state([OLD, OLD, OLD]), p.steps);
    expect(low).toBe(2);
    expect([...live.values()]).toEqual([NEW, NEW, NEW]);
  });

  it('scales up and down with the same image', () => {
    expect(planRollout(settings(4), state([NEW, NEW]), NEW).steps).toEqual([
      { kind: 'create', hosts: ['f-2-1', 'f-2-2'] },
      { kind: 'await-healthy', hosts: ['f-2-1', 'f-2-2'] },
    ]);
    expect(planRollout(settings(2), state([NEW, NEW, NEW, NEW]), NEW).steps).toEqual([
      { kind: 'retire', hosts: ['f-1-1', 'f-1-2'] },
    ]);
  });

  it('for every small fleet: ends with `hosts` hosts of the target, never above hosts+maxSurge, never below minHealthy', () => {
    let plans = 0;
    for (let hosts = 1; hosts <= 5; hosts++) {
      for (let oldN = 0; oldN <= 5; oldN++) {
        for (let curN = 0; curN <= 3; curN++) {
          for (let surge = 0; surge <= 3; surge++) {
            for (let minHealthy = 0; minHealthy <= hosts; minHealthy++) {
              if (surge === 0 && minHealthy >= hosts) continue; // refused by the schema
              const start = state([...Array(oldN).fill(OLD), ...Array(curN).fill(NEW)]);
              const p = planRollout(settings(hosts, surge, minHealthy), start, NEW);
              const { live, peak, low } = play(start, p.steps);
              const where = `hosts ${hosts} old ${oldN} cur ${curN} surge ${surge} min ${minHealthy}`;
              expect(live.size, where).toBe(hosts);
              expect(
                [...live.values()].every((i) => i === NEW),
                where,
              ).toBe(true);
              expect(peak, where).toBeLessThanOrEqual(Math.max(oldN + curN, hosts + surge));
              expect(low, where).toBeGreaterThanOrEqual(Math.min(oldN + curN, minHealthy));
              // Every new host is checked before any old host goes after it.
              for (const [i, s] of p.steps.entries()) {
                if (s.kind !== 'create') continue;
                expect(p.steps[i + 1], where).toEqual({ kind: 'await-healthy', hosts: s.hosts });
              }
              plans++;
            }
          }
        }
      }
    }
    expect(plans).toBeGreaterThan(500);
  });

  it('refuses while a rollout runs or is stopped; hosts left half-made, half-removed or unchecked are cleaned up first and do not count', () => {
    const running = state([OLD], {
      rollout: { generation: 2, target: NEW, from: [OLD], phase: 'running', steps: [], startedAt: '' },
    });
    expect(() => planRollout(settings(1), running, NEW)).toThrow(/in progress: resume it .* or undo it/);
    const stopped = state([OLD], {
      rollout: { generation: 2, target: NEW, from: [OLD], phase: 'stopped', steps: [], startedAt: '', reason: 'x' },
    });
    expect(() => planRollout(settings(1), stopped, NEW)).toThrow(PlanError);
    expect(() => planRollout(settings(1), stopped, NEW)).toThrow(/stopped \(x\).*rollback.*--resume/);
    const stray = state([OLD]);
    stray.hosts.push(
      { name: 'f-2-1', image: NEW, generation: 2, status: 'creating', createdAt: '' },
      { name: 'f-2-2', image: NEW, generation: 2, status: 'pending', createdAt: '' },
      { name: 'f-0-1', image: OLD, generation: 0, status: 'retiring', createdAt: '', error: 'retire failed: x' },
    );
    const p = planRollout(settings(1), stray, NEW);
    expect(p.cleanup).toEqual(['f-2-1', 'f-2-2', 'f-0-1']);
    expect(p.steps[0]).toEqual({ kind: 'retire', hosts: ['f-2-1', 'f-2-2', 'f-0-1'] });
    // Only f-1-1 counts: one new host, then f-1-1 goes.
    expect(p.creates).toEqual(['f-3-1']); // names are never reused, not even those of strays
    expect(p.retires).toEqual(['f-1-1']);
    expect(formatPlan(p)).toMatch(/1\. clean up f-2-1, f-2-2, f-0-1/);
  });

  it('never reuses a generation the provider shows, and notes leaked hosts without touching them', () => {
    const p = planRollout(settings(1), state([OLD]), NEW, { lost: [], leaked: ['f-9-1'], maxGeneration: 9 });
    expect(p.generation).toBe(10);
    expect(p.creates).toEqual(['f-10-1']);
    expect(p.steps.flatMap((s) => s.hosts)).not.toContain('f-9-1');
    expect(formatPlan(p)).toMatch(/note: 1 host\(s\) of this fleet that the state does not know: f-9-1/);
  });
});
