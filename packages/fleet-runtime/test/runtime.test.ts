// The runtime over an in-memory provider and orchestrator (registered like any adapter) and the
// real file state: what each command does to the world and the state, saved plans, refresh,
// repair, prune, the lock, secrets. The real adapters have contract and end-to-end tests.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  BuiltImage,
  CreateRequest,
  HostRecord,
  Orchestrator,
  OrchestratorPlugin,
  ProvidedHost,
  Provider,
  ProviderPlugin,
  PublishedImage,
  UserData,
} from '@stele/fleet';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { FleetRuntime, fileState, type Registry, type RuntimeEvent } from '../src/index.ts';

/** A cloud in memory: what was published and which hosts exist, shared by every provider instance. */
class Cloud {
  images = new Map<string, PublishedImage>();
  uploads = 0;
  hosts = new Map<string, { image: string; userdata: UserData; token: string }>();
  nodes = new Map<string, 'active' | 'drain'>();
  rotations = 0;
  log: string[] = [];
  unhealthy = new Set<string>();
}

function provider(cloud: Cloud): Provider {
  const ph = (name: string): ProvidedHost | undefined => {
    const h = cloud.hosts.get(name);
    return h ? { name, image: h.image, ref: { id: name }, address: `10.0.0.${cloud.hosts.size}` } : undefined;
  };
  return {
    bootFormat: 'tar',
    async findPublished(identity) {
      return cloud.images.get(identity);
    },
    async publish(image: BuiltImage) {
      const had = cloud.images.get(image.identity);
      if (had) return { ...had, reused: true };
      expect(image.files.length).toBeGreaterThan(0);
      cloud.uploads++;
      const p = { identity: image.identity, format: image.format, ref: { path: `images/${image.identity}` } };
      cloud.images.set(image.identity, p);
      return { ...p, reused: false };
    },
    async listPublished() {
      return [...cloud.images.values()];
    },
    async unpublish(image) {
      if (!cloud.images.has(image.identity)) return 'gone';
      if ([...cloud.hosts.values()].some((h) => h.image === image.identity)) return 'in-use';
      cloud.images.delete(image.identity);
      return 'removed';
    },
    async create(req: CreateRequest) {
      cloud.log.push(`create ${req.name}`);
      cloud.hosts.set(req.name, { image: req.image.identity, userdata: req.userdata, token: req.token });
      cloud.nodes.set(req.name, 'active');
      return ph(req.name) as ProvidedHost;
    },
    async find(name) {
      return ph(name);
    },
    async list() {
      return [...cloud.hosts.keys()].map((n) => ph(n) as ProvidedHost);
    },
    async address(h: HostRecord) {
      return ph(h.name)?.address;
    },
    async endpoint(h: HostRecord, port: number) {
      return cloud.hosts.has(h.name) ? { host: '127.0.0.1', port } : undefined;
    },
    async destroy(h: HostRecord) {
      cloud.log.push(`destroy ${h.name}`);
      cloud.hosts.delete(h.name);
    },
    async close() {},
  };
}

function orchestrator(cloud: Cloud): Orchestrator {
  return {
    async joinUserdata() {
      return { swarm: { entries: { token: { content: `token-${cloud.rotations}` } } } };
    },
    async ready(h) {
      const ok = cloud.nodes.get(h.name) === 'active' && !cloud.unhealthy.has(h.name);
      return { ok, detail: ok ? 'ready' : 'not ready' };
    },
    async drain(h) {
      if (cloud.nodes.has(h.name)) cloud.nodes.set(h.name, 'drain');
    },
    async remove(h) {
      cloud.nodes.delete(h.name);
    },
    async rotateJoinSecret() {
      cloud.rotations++;
    },
    async close() {},
  };
}

let dir: string;
let cloud: Cloud;
let secretsSeen: string[];
const FLEET = () => join(dir, 'web', 'dev', 'fleet.yml');

function registryFor(c: Cloud): Registry {
  const p: ProviderPlugin<{ type: 'qemu' }> = {
    type: 'qemu',
    bootFormat: () => 'tar',
    create: async () => provider(c),
  };
  const o: OrchestratorPlugin<{ type: 'swarm'; endpoint: string }> = {
    type: 'swarm',
    create: async (config, ctx) => {
      // The plugin reads its secret through the context; the value reaches it, never a message.
      if ('tls' in config && config.tls)
        secretsSeen.push(await ctx.secret((config.tls as { ca: { env: string } }).ca, 'orchestrator.tls.ca'));
      return orchestrator(c);
    },
  };
  return { providers: { qemu: p as never }, orchestrators: { swarm: o as never }, stateBackends: { file: fileState } };
}

function writeFleet(extra = '', hosts = 2) {
  writeFileSync(
    FLEET(),
    [
      'name: web-dev',
      'image: ../os.yml',
      `hosts: ${hosts}`,
      'provider:',
      '  type: qemu',
      'strategy:',
      '  bakeSeconds: 0',
      '  healthTimeoutSeconds: 5',
      'health:',
      '  - type: swarm-node-ready',
      '    intervalSeconds: 1',
      'orchestrator:',
      '  type: swarm',
      '  endpoint: unix:///nonexistent.sock',
      extra,
    ].join('\n'),
  );
}

function motd(v: string) {
  writeFileSync(join(dir, 'web', 'motd.txt'), `version ${v}\n`);
}

async function rt(command = 'stele fleet rollout', env: NodeJS.ProcessEnv = {}) {
  const events: RuntimeEvent[] = [];
  const runtime = await FleetRuntime.open({
    file: FLEET(),
    env: { HOME: dir, ...env },
    storeDir: join(dir, 'store'),
    command,
    registry: registryFor(cloud),
    onEvent: (e) => events.push(e),
    retry: { attempts: 2, baseMs: 1, maxMs: 1 },
  });
  return { runtime, events };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'stele-runtime-'));
  mkdirSync(join(dir, 'web', 'dev'), { recursive: true });
  writeFileSync(join(dir, 'web', 'os.yml'), 'files:\n  - path: etc/motd\n    source: motd.txt\n');
  motd('1');
  writeFleet();
  cloud = new Cloud();
  secretsSeen = [];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fleet runtime', () => {
  it('a first rollout publishes the image once, starts the hosts, records them and the image; a second does nothing', async () => {
    const { runtime, events } = await rt();
    const { state } = await runtime.rollout();
    expect(state.hosts.map((h) => `${h.name}:${h.status}`)).toEqual(['web-dev-1-1:live', 'web-dev-1-2:live']);
    expect(cloud.uploads).toBe(1);
    expect(state.images).toHaveLength(1);
    expect(state.images[0]?.identity).toBe(state.hosts[0]?.image);
    expect(events.some((e) => e.type === 'publish' && e.phase === 'build')).toBe(true);
    // The join secret went into user data, and was rotated once the hosts had joined.
    expect(cloud.hosts.get('web-dev-1-1')?.userdata.swarm).toEqual({ entries: { token: { content: 'token-0' } } });
    expect(cloud.rotations).toBe(1);
    const again = await (await rt()).runtime.rollout();
    expect(again.plan?.steps).toEqual([]);
    expect(cloud.uploads).toBe(1);
  });

  it('a changed image is rolled blue-green; the published image of an identity is found, not uploaded again', async () => {
    await (await rt()).runtime.rollout();
    motd('2');
    const { runtime } = await rt();
    const { state } = await runtime.rollout();
    expect(state.hosts.map((h) => h.name)).toEqual(['web-dev-2-1', 'web-dev-2-2']);
    expect(cloud.log).toEqual([
      'create web-dev-1-1',
      'create web-dev-1-2',
      'create web-dev-2-1',
      'destroy web-dev-1-1',
      'create web-dev-2-2',
      'destroy web-dev-1-2',
    ]);
    expect(cloud.uploads).toBe(2);
    // Back to the first image: it is published already.
    motd('1');
    await (await rt()).runtime.rollout();
    expect(cloud.uploads).toBe(2);
  });

  it('a saved plan runs as saved, and is refused naming what changed since', async () => {
    const first = await (await rt('stele fleet plan')).runtime.plan();
    expect(first.plan.creates).toEqual(['web-dev-1-1', 'web-dev-1-2']);
    const saved = JSON.parse(JSON.stringify(first.saved));
    const { state } = await (await rt()).runtime.rollout({ plan: saved });
    expect(state.hosts).toHaveLength(2);
    // The same saved plan again: the state has moved on.
    await expect((await rt()).runtime.rollout({ plan: saved })).rejects.toThrow(
      /the saved plan no longer applies: the state was written \d+ time\(s\) since/,
    );
    // A plan made, then the image changes.
    motd('2');
    const second = (await (await rt('stele fleet plan')).runtime.plan()).saved;
    motd('3');
    await expect((await rt()).runtime.rollout({ plan: second })).rejects.toThrow(
      /the image is now [0-9a-f]{12}, the plan rolls to [0-9a-f]{12}/,
    );
    motd('2');
    writeFleet('', 3);
    await expect((await rt()).runtime.rollout({ plan: second })).rejects.toThrow(
      /hosts is now 3 in the fleet.yml, the plan was made with 2/,
    );
    expect(cloud.hosts.size).toBe(2);
  });

  it('status shows a host made outside the state as leaked and a vanished one as lost; the plan replaces the lost one and skips past the leaked generation', async () => {
    await (await rt()).runtime.rollout();
    cloud.hosts.set('web-dev-5-1', { image: 'sha256:x', userdata: {}, token: '' });
    cloud.hosts.delete('web-dev-1-2');
    const status = await (await rt('stele fleet status')).runtime.status({ refresh: true });
    expect(status.leaked).toEqual([{ name: 'web-dev-5-1', image: 'sha256:x' }]);
    expect(status.lost).toEqual(['web-dev-1-2']);
    const { plan } = await (await rt('stele fleet plan')).runtime.plan();
    expect(plan.generation).toBe(6);
    expect(plan.cleanup).toEqual(['web-dev-1-2']);
    expect(plan.creates).toEqual(['web-dev-6-1']);
    await (await rt()).runtime.rollout();
    expect([...cloud.hosts.keys()].sort()).toEqual(['web-dev-1-1', 'web-dev-5-1', 'web-dev-6-1']);
    // prune removes the leaked host (recorded first, then retired).
    const dry = await (await rt('stele fleet prune')).runtime.prune({ dryRun: true });
    expect(dry.hosts).toEqual(['web-dev-5-1']);
    expect(cloud.hosts.has('web-dev-5-1')).toBe(true);
    const pruned = await (await rt('stele fleet prune')).runtime.prune();
    expect(pruned.hosts).toEqual(['web-dev-5-1']);
    expect(pruned.failed).toEqual([]);
    expect(cloud.hosts.has('web-dev-5-1')).toBe(false);
  });

  it('prune removes published images no host uses, keeping the newest two', async () => {
    for (const v of ['1', '2', '3']) {
      motd(v);
      await (await rt()).runtime.rollout();
    }
    expect(cloud.images.size).toBe(3);
    const report = await (await rt('stele fleet prune')).runtime.prune({ hosts: false });
    expect(report.images.map((i) => i.result)).toEqual(['removed']);
    expect(report.kept).toHaveLength(2);
    expect(cloud.images.size).toBe(2);
    const again = await (await rt('stele fleet prune')).runtime.prune({ hosts: false });
    expect(again.images).toEqual([]);
  });

  it('a second command is refused naming the holder; unlock needs --force while the holder may live', async () => {
    const { runtime: a } = await rt('stele fleet rollout');
    const store = await a.stateStore();
    const held = await store.open({ user: 'alice', host: 'laptop', pid: 4242, command: 'stele fleet rollout' });
    await expect((await rt()).runtime.rollout()).rejects.toThrow(
      /another command holds the lock of this fleet: alice@laptop \(pid 4242, 'stele fleet rollout'\)/,
    );
    await expect((await rt('stele fleet unlock')).runtime.unlock(false)).rejects.toThrow(
      /locked by alice@laptop .* run again with --force/,
    );
    const broken = await (await rt('stele fleet unlock')).runtime.unlock(true);
    expect(broken?.holder.user).toBe('alice');
    const { state } = await (await rt()).runtime.rollout();
    expect(state.hosts).toHaveLength(2);
    await held.close();
  });

  it('repair rebuilds a lost or unreadable state from what the provider holds, keeping the bad one', async () => {
    await (await rt()).runtime.rollout();
    const path = join(dir, 'web', 'dev', '.stele', 'state', 'web-dev.json');
    writeFileSync(path, '{"version": 2, "hosts": "cut sh');
    await expect((await rt('stele fleet status')).runtime.status()).rejects.toThrow(
      /unreadable: it is not JSON.*stele fleet status --repair/,
    );
    const repaired = await (await rt('stele fleet status --repair')).runtime.repair();
    expect(repaired.adopted.sort()).toEqual(['web-dev-1-1', 'web-dev-1-2']);
    expect(readFileSync(repaired.backup as string, 'utf8')).toContain('cut sh');
    const { plan } = await (await rt('stele fleet plan')).runtime.plan();
    expect(plan.steps).toEqual([]);
    expect(plan.generation).toBe(2);
    await expect((await rt('stele fleet status --repair')).runtime.repair()).rejects.toThrow(/nothing to repair/);
    // A state deleted outright: the running hosts are adopted, not made again under old names.
    rmSync(path);
    await (await rt('stele fleet status --repair')).runtime.repair();
    motd('2');
    const next = await (await rt('stele fleet plan')).runtime.plan();
    expect(next.plan.creates).toEqual(['web-dev-2-1', 'web-dev-2-2']);
  });

  it('resumes an interrupted rollout; a stopped one only with --resume', async () => {
    writeFileSync(
      FLEET(),
      readFileSync(FLEET(), 'utf8').replace('  bakeSeconds: 0', '  bakeSeconds: 0\n  rollback: manual'),
    );
    await (await rt()).runtime.rollout();
    motd('2');
    cloud.unhealthy.add('web-dev-2-1');
    await expect((await rt()).runtime.rollout()).rejects.toThrow(/stopped \(rollback: manual\)/);
    await expect((await rt()).runtime.rollout()).rejects.toThrow(/stopped .*--resume/);
    cloud.unhealthy.clear();
    const { state } = await (await rt()).runtime.rollout({ resume: true });
    expect(state.rollout?.phase).toBe('done');
    expect(state.hosts.map((h) => h.name)).toEqual(['web-dev-2-1', 'web-dev-2-2']);
  });

  it('secrets are read through the context and never appear in errors', async () => {
    writeFileSync(
      FLEET(),
      readFileSync(FLEET(), 'utf8').replace(
        '  endpoint: unix:///nonexistent.sock',
        '  endpoint: tcp://m:2376\n  tls:\n    ca: { env: CA_PEM }\n    cert: { env: CA_PEM }\n    key: { env: CA_PEM }',
      ),
    );
    await (await rt('stele fleet rollout', { CA_PEM: 's3cret-pem' })).runtime.rollout();
    expect(secretsSeen).toEqual(['s3cret-pem']);
    motd('2');
    const missing = await (await rt('stele fleet rollout', {})).runtime.rollout().catch((e: Error) => e);
    expect((missing as Error).message).toMatch(/orchestrator.tls.ca: the environment variable CA_PEM is not set/);
  });

  it('a provider type this Stele has no adapter for is refused before anything is done', async () => {
    writeFileSync(
      FLEET(),
      readFileSync(FLEET(), 'utf8').replace(
        'provider:\n  type: qemu',
        'provider:\n  type: aws\n  region: eu-west-1\n  instanceType: t3.small\n  subnets: [subnet-1]\n  securityGroups: [sg-1]\n  bucket: my-bucket',
      ),
    );
    const { runtime } = await rt();
    await expect(runtime.rollout()).rejects.toThrow(/provider aws is not available in this Stele \(available: qemu\)/);
    expect(existsSync(join(dir, 'web', 'dev', '.stele'))).toBe(false);
    // A plan from the state alone needs no adapter.
    expect((await runtime.plan({ refresh: false })).plan.creates).toEqual(['web-dev-1-1', 'web-dev-1-2']);
  });
});
