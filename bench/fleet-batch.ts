/**
 * How long one blue-green batch takes with a provider that is slow the way clouds are: create
 * 5 s, drain 5 s (destroy and remove instant, checks pass at once, no bake). A batch of N new
 * hosts replacing N old ones, with the engine's hosts worked on concurrently (the default) and
 * one at a time (concurrency 1, what the engine did before). Real time, a fake world.
 *   pnpm exec tsx bench/fleet-batch.ts [createSeconds] [drainSeconds]
 */
import {
  emptyState,
  type FleetState,
  type HostRecord,
  type Orchestrator,
  type Provider,
  planRollout,
  realClock,
  startRollout,
} from '../packages/fleet/src/index.ts';

const createS = Number(process.argv[2] ?? 5);
const drainS = Number(process.argv[3] ?? 5);
const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));
const IMAGE = { identity: 'sha256:new', format: 'kernel+initrd', ref: {} };

function world(): { provider: Provider; orchestrator: Orchestrator; calls: () => number } {
  const vms = new Set<string>();
  let calls = 0;
  const provider: Provider = {
    bootFormat: 'kernel+initrd',
    findPublished: async () => IMAGE,
    publish: async () => ({ ...IMAGE, reused: true }),
    listPublished: async () => [IMAGE],
    unpublish: async () => 'gone',
    create: async (req) => {
      calls++;
      await sleep(createS);
      vms.add(req.name);
      return { name: req.name, image: IMAGE.identity, ref: {}, address: req.name };
    },
    find: async (name) => {
      calls++;
      return vms.has(name) ? { name, image: IMAGE.identity, ref: {}, address: name } : undefined;
    },
    list: async () => [],
    address: async (h) => h.name,
    endpoint: async () => undefined,
    destroy: async (h) => {
      calls++;
      vms.delete(h.name);
    },
    close: async () => {},
  };
  const orchestrator: Orchestrator = {
    joinUserdata: async () => ({}),
    ready: async () => ({ ok: true, detail: '' }),
    drain: async () => {
      calls++;
      await sleep(drainS);
    },
    remove: async () => {},
    rotateJoinSecret: async () => {},
    close: async () => {},
  };
  return { provider, orchestrator, calls: () => calls };
}

async function batch(n: number, concurrency: number): Promise<number> {
  const state: FleetState = { ...emptyState('b'), lineage: 'bench', generation: 1 };
  for (let i = 1; i <= n; i++) {
    state.hosts.push({
      name: `b-1-${i}`,
      image: 'sha256:old',
      generation: 1,
      status: 'live',
      createdAt: '',
    } as HostRecord);
  }
  const plan = planRollout({ fleet: 'b', hosts: n, maxSurge: n, minHealthy: n, bakeSeconds: 0 }, state, IMAGE.identity);
  const w = world();
  const t0 = performance.now();
  await startRollout(
    plan,
    { healthTimeoutSeconds: 60, intervalSeconds: 1, rollback: 'auto', image: IMAGE, concurrency },
    {
      provider: w.provider,
      orchestrator: w.orchestrator,
      health: { check: async () => ({ ok: true, detail: '' }) },
      clock: realClock,
      journal: { state, save: async () => {} },
    },
  );
  return (performance.now() - t0) / 1000;
}

console.log(`one batch: create ${createS} s, drain ${drainS} s per host; maxSurge = hosts, no bake`);
const results: Record<string, number> = {};
for (const concurrency of [10, 1]) {
  for (const n of [1, 3, 5]) {
    const s = await batch(n, concurrency);
    results[`${concurrency}:${n}`] = s;
    console.log(
      `  ${concurrency === 1 ? 'one host at a time' : 'concurrent        '}  ${n} host(s): ${s.toFixed(2)} s`,
    );
  }
}
for (const concurrency of [10, 1]) {
  const r3 = (results[`${concurrency}:3`] ?? 0) / (results[`${concurrency}:1`] ?? 1);
  console.log(`${concurrency === 1 ? 'one at a time' : 'concurrent'}: 3-host batch / 1-host batch = ${r3.toFixed(2)}×`);
}
