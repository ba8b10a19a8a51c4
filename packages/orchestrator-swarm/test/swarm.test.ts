// SwarmOrchestrator against a real dockerd in swarm mode (a one-node swarm: the manager's own node
// stands in for a fleet host). Its API listens on the unix socket and on tcp with mutual TLS.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { classify, type HostRecord, type PluginContext } from '@stele/fleet';
import { type Dockerd, freePort, startDockerd } from '@stele/test-peers';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  plugin,
  type SwarmConfig,
  SwarmError,
  SwarmOrchestrator,
  type SwarmOrchestratorOptions,
} from '../src/index.ts';

const run = promisify(execFile);
const IMAGE = 'stele-test/busybox:1';

let engine: Dockerd;
let work: string;
let swarmPort: number;
let apiPort: number;
let hostname: string;
let nodeId: string;
let tls: { ca: string; cert: string; key: string };
let otherCa: string;

function host(name: string): HostRecord {
  return { name, image: 'sha256:test', generation: 1, status: 'live', createdAt: new Date().toISOString() };
}

function orchestrator(opts: Partial<SwarmOrchestratorOptions> = {}): SwarmOrchestrator {
  return new SwarmOrchestrator({ endpoint: `unix://${engine.socketPath}`, drainSeconds: 60, pollMs: 200, ...opts });
}

/** What the runtime gives a plugin; secrets come from `secrets` by env name or file path. */
function context(secrets: Record<string, string>, asked: string[] = []): PluginContext {
  return {
    fleet: 'web',
    fleetFile: '/fleets/web/fleet.yml',
    workDir: '/fleets/web/.stele',
    env: {},
    log: () => undefined,
    async secret(ref, field) {
      asked.push(field);
      const key = 'env' in ref ? ref.env : ref.file;
      const value = secrets[key];
      if (value === undefined) throw new Error(`${field}: ${key} is not set`);
      return value;
    },
  };
}

async function waitUntil<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Task {
  ID: string;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; ContainerStatus?: { ContainerID?: string } };
}

async function tasksOf(service: string): Promise<Task[]> {
  return (await engine.docker.listTasks({ filters: { service: [service] } })) as Task[];
}

async function inspectNode(): Promise<{ Version: { Index: number }; Spec: Record<string, unknown> }> {
  return (await engine.docker.getNode(nodeId).inspect()) as {
    Version: { Index: number };
    Spec: Record<string, unknown>;
  };
}

async function updateNode(change: Record<string, unknown>): Promise<void> {
  const n = await inspectNode();
  await engine.docker.getNode(nodeId).update({ _query: { version: n.Version.Index }, _body: { ...n.Spec, ...change } });
}

/** A service of `replicas` busybox tasks, once they all run. */
async function runService(name: string, spec: Record<string, unknown>, replicas: number): Promise<Task[]> {
  await engine.docker.createService({
    Name: name,
    TaskTemplate: { ContainerSpec: { Image: IMAGE, ...spec }, RestartPolicy: { Condition: 'any', Delay: 100_000_000 } },
    Mode: { Replicated: { Replicas: replicas } },
  } as Dockerode.CreateServiceOptions);
  return waitUntil(`${replicas} running tasks of ${name}`, async () => {
    const running = (await tasksOf(name)).filter((t) => t.Status.State === 'running' && t.DesiredState === 'running');
    return running.length === replicas ? running : undefined;
  });
}

async function removeService(name: string): Promise<void> {
  await engine.docker
    .getService(name)
    .remove()
    .catch(() => undefined);
}

/** An image of Debian's static busybox (offline: imported from a rootfs tar, nothing pulled). */
async function importBusybox(docker: Dockerode, dir: string): Promise<void> {
  const root = join(dir, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  for (const applet of ['sh', 'sleep']) symlinkSync('busybox', join(root, 'bin', applet));
  const tar = join(dir, 'rootfs.tar');
  await run('tar', ['-cf', tar, '-C', root, '.']);
  const stream = await docker.importImage(tar, { repo: 'stele-test/busybox', tag: '1' });
  await new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject).resume());
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, as dockerd --tlsverify wants. */
async function makeCerts(dir: string): Promise<void> {
  const ssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    await ssl(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      `${ca}-key.pem`,
      '-out',
      `${ca}.pem`,
      '-days',
      '2',
      '-subj',
      `/CN=${ca}`,
    );
  }
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    await ssl('req', ...ec, '-keyout', `${who}-key.pem`, '-out', `${who}.csr`, '-subj', `/CN=${who}`);
    await ssl(
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca-key.pem',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${who}.ext`,
      '-out',
      `${who}.pem`,
    );
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'stele-swarm-'));
  await makeCerts(work);
  const pem = (f: string) => readFileSync(join(work, f), 'utf8');
  tls = { ca: pem('ca.pem'), cert: pem('client.pem'), key: pem('client-key.pem') };
  otherCa = pem('other-ca.pem');
  apiPort = await freePort();
  engine = await startDockerd({
    extraArgs: [
      '-H',
      `tcp://127.0.0.1:${apiPort}`,
      '--tlsverify',
      '--tlscacert',
      join(work, 'ca.pem'),
      '--tlscert',
      join(work, 'server.pem'),
      '--tlskey',
      join(work, 'server-key.pem'),
    ],
  });
  do swarmPort = await freePort();
  while (swarmPort === apiPort);
  await engine.docker.swarmInit({ ListenAddr: `127.0.0.1:${swarmPort}`, AdvertiseAddr: `127.0.0.1:${swarmPort}` });
  const nodes = await engine.docker.listNodes();
  expect(nodes).toHaveLength(1);
  nodeId = nodes[0].ID;
  hostname = nodes[0].Description.Hostname;
  await importBusybox(engine.docker, work);
}, 120_000);

afterAll(async () => {
  await engine?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('joinUserdata', () => {
  it('gives the advertised manager address and the worker join token', async () => {
    const swarm = (await engine.docker.swarmInspect()) as { JoinTokens: { Worker: string; Manager: string } };
    const orch = orchestrator();
    try {
      const data = await orch.joinUserdata();
      expect(data).toEqual({
        swarm: {
          entries: { manager: { content: `127.0.0.1:${swarmPort}` }, token: { content: swarm.JoinTokens.Worker } },
        },
      });
      const token = (data as { swarm: { entries: { token: { content: string } } } }).swarm.entries.token.content;
      expect(token).toMatch(/^SWMTKN-1-/);
      expect(token).not.toBe(swarm.JoinTokens.Manager);
    } finally {
      await orch.close();
    }
  });

  it('refuses an engine that is not in a swarm, naming it', async () => {
    const lone = await startDockerd();
    try {
      const endpoint = `unix://${lone.socketPath}`;
      const orch = new SwarmOrchestrator({ endpoint, drainSeconds: 5 });
      const err = await orch.joinUserdata().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SwarmError);
      expect((err as Error).message).toBe(
        `the Docker Engine at ${endpoint} is not a Swarm manager (LocalNodeState: inactive)`,
      );
      // Only the user can mend it: not retried, the rollout waits for them.
      expect(classify(err)).toBe('user');
      // The node API answers 503 there: a clear error for drain (the user's too, although a 503
      // is otherwise retried), a failed check for ready.
      const drainErr = await orch.drain(host('web-1-1')).catch((e: unknown) => e);
      expect((drainErr as Error).message).toContain(`the Docker Engine at ${endpoint} is not a Swarm manager`);
      expect(classify(drainErr)).toBe('user');
      const res = await orch.ready(host('web-1-1'));
      expect(res.ok).toBe(false);
      expect(res.detail).toContain(`${endpoint} is not a Swarm manager`);
      await expect(orch.rotateJoinSecret()).rejects.toThrow(`the Docker Engine at ${endpoint} is not a Swarm manager`);
      await orch.close();
    } finally {
      await lone.stop();
    }
  });
});

describe('rotateJoinSecret', () => {
  it('replaces the worker join token, keeps the manager token and the swarm spec, and joinUserdata gives the new one', async () => {
    type Swarm = { JoinTokens: { Worker: string; Manager: string }; Spec: Record<string, unknown> };
    const before = (await engine.docker.swarmInspect()) as Swarm;
    const orch = orchestrator();
    try {
      await orch.rotateJoinSecret();
      const after = (await engine.docker.swarmInspect()) as Swarm;
      expect(after.JoinTokens.Worker).not.toBe(before.JoinTokens.Worker);
      expect(after.JoinTokens.Worker).toMatch(/^SWMTKN-1-/);
      expect(after.JoinTokens.Manager).toBe(before.JoinTokens.Manager);
      expect(after.Spec).toEqual(before.Spec);
      const data = (await orch.joinUserdata()) as { swarm: { entries: { token: { content: string } } } };
      expect(data.swarm.entries.token.content).toBe(after.JoinTokens.Worker);
    } finally {
      await orch.close();
    }
  });
});

describe('close', () => {
  it('may be called twice, also before any call; calls after it are refused', async () => {
    const unused = orchestrator();
    await unused.close();
    await unused.close();

    const orch = orchestrator();
    expect((await orch.ready(host(hostname))).ok).toBe(true);
    await orch.close();
    await orch.close();
    const err = await orch.joinUserdata().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwarmError);
    expect((err as Error).message).toBe(`the orchestrator of unix://${engine.socketPath} is closed`);
    expect(classify(err)).toBe('fatal');
    expect(await orch.ready(host(hostname))).toEqual({
      ok: false,
      detail: `the orchestrator of unix://${engine.socketPath} is closed`,
    });
  });
});

describe('ready', () => {
  it('is ok for a ready, active node and says why not otherwise', async () => {
    const orch = orchestrator();
    expect(await orch.ready(host(hostname))).toEqual({
      ok: true,
      detail: `node ${hostname}: status ready, availability active`,
    });
    expect(await orch.ready(host('web-1-1'))).toEqual({ ok: false, detail: 'no node with hostname web-1-1' });
    await updateNode({ Availability: 'pause' });
    try {
      expect(await orch.ready(host(hostname))).toEqual({
        ok: false,
        detail: `node ${hostname}: status ready, availability pause`,
      });
    } finally {
      await updateNode({ Availability: 'active' });
    }
    await orch.close();
  });

  it('applies the labels once the node is ready, merged, and only when one differs', async () => {
    await updateNode({ Labels: { keep: 'me', zone: 'z' } });
    const labels = { 'stele.fleet': 'web', zone: 'a' };
    const orch = orchestrator({ labels });
    // Not ready (paused): no labels yet.
    await updateNode({ Availability: 'pause' });
    expect((await orch.ready(host(hostname))).ok).toBe(false);
    expect((await inspectNode()).Spec.Labels).toEqual({ keep: 'me', zone: 'z' });
    await updateNode({ Availability: 'active' });

    expect((await orch.ready(host(hostname))).ok).toBe(true);
    const first = await inspectNode();
    expect(first.Spec.Labels).toEqual({ keep: 'me', 'stele.fleet': 'web', zone: 'a' });
    expect(first.Spec.Availability).toBe('active');
    expect((await orch.ready(host(hostname))).ok).toBe(true);
    expect((await orch.ready(host(hostname))).ok).toBe(true);
    expect((await inspectNode()).Version.Index).toBe(first.Version.Index);

    // A label that changed is written again.
    const changed = orchestrator({ labels: { zone: 'b' } });
    expect((await changed.ready(host(hostname))).ok).toBe(true);
    const second = await inspectNode();
    expect(second.Version.Index).toBeGreaterThan(first.Version.Index);
    expect(second.Spec.Labels).toEqual({ keep: 'me', 'stele.fleet': 'web', zone: 'b' });
    await orch.close();
    await changed.close();
  });
});

describe('drain', () => {
  it('drains the node and waits until its tasks have stopped', async () => {
    // sh as pid 1 with a TERM trap: stops within a second of being asked.
    const before = await runService(
      'drainable',
      { Command: ['/bin/sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"] },
      2,
    );
    expect(before.every((t) => t.NodeID === nodeId)).toBe(true);
    const orch = orchestrator({ drainSeconds: 60 });
    try {
      const t0 = Date.now();
      await orch.drain(host(hostname));
      expect(Date.now() - t0).toBeLessThan(60_000);
      const after = (await tasksOf('drainable')).filter((t) => t.NodeID === nodeId);
      expect(after.filter((t) => t.DesiredState === 'running')).toEqual([]);
      expect(after.filter((t) => t.Status.State === 'running')).toEqual([]);
      expect((await inspectNode()).Spec.Availability).toBe('drain');
      expect(await orch.ready(host(hostname))).toEqual({
        ok: false,
        detail: `node ${hostname}: status ready, availability drain`,
      });
      // Draining a drained node changes nothing and returns at once.
      const version = (await inspectNode()).Version.Index;
      await orch.drain(host(hostname));
      expect((await inspectNode()).Version.Index).toBe(version);
    } finally {
      await updateNode({ Availability: 'active' });
      await removeService('drainable');
      await orch.close();
    }
  });

  it('gives up after drainSeconds when tasks do not leave, without an error', async () => {
    // sleep as pid 1 ignores TERM; a long stop grace period keeps its container running.
    const [task] = await runService('stuck', { Command: ['/bin/sleep', '3600'], StopGracePeriod: 120_000_000_000 }, 1);
    const orch = orchestrator({ drainSeconds: 1 });
    try {
      const t0 = Date.now();
      await orch.drain(host(hostname));
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(900);
      expect(took).toBeLessThan(30_000);
      expect((await inspectNode()).Spec.Availability).toBe('drain');
      // The manager wants the task gone, but its container still runs: drain did time out.
      const now = (await tasksOf('stuck')).find((t) => t.ID === task?.ID);
      expect(now?.DesiredState).toBe('shutdown');
      expect(now?.Status.State).toBe('running');
    } finally {
      await updateNode({ Availability: 'active' });
      await removeService('stuck');
      const id = task?.Status.ContainerStatus?.ContainerID;
      if (id) {
        await engine.docker
          .getContainer(id)
          .kill()
          .catch(() => undefined);
      }
      await orch.close();
    }
  });

  it('returns at once for a host that never joined', async () => {
    const orch = orchestrator();
    await orch.drain(host('web-9-9'));
    await orch.close();
  });
});

describe('endpoints', () => {
  it('speaks TLS over tcp:// and https:// with the given client certificate', async () => {
    for (const endpoint of [`tcp://127.0.0.1:${apiPort}`, `https://127.0.0.1:${apiPort}`]) {
      const orch = new SwarmOrchestrator({ endpoint, tls, drainSeconds: 5 });
      expect(await orch.ready(host(hostname))).toEqual({
        ok: true,
        detail: `node ${hostname}: status ready, availability active`,
      });
      const data = (await orch.joinUserdata()) as { swarm: { entries: { manager: { content: string } } } };
      expect(data.swarm.entries.manager.content).toBe(`127.0.0.1:${swarmPort}`);
      await orch.close();
    }
  });

  it('reports a TLS endpoint reached without TLS or with the wrong CA as a SwarmError naming it', async () => {
    const endpoint = `tcp://127.0.0.1:${apiPort}`;
    const plain = new SwarmOrchestrator({ endpoint, drainSeconds: 5 });
    const err = await plain.joinUserdata().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwarmError);
    expect((err as Error).message).toContain(endpoint);
    expect((err as Error).message).toBe(
      `${endpoint}: could not read docker info (HTTP 400): Client sent an HTTP request to an HTTPS server.`,
    );
    expect(classify(err)).toBe('user');
    await plain.close();

    const wrongCa = new SwarmOrchestrator({ endpoint, tls: { ...tls, ca: otherCa }, drainSeconds: 5 });
    const err2 = await wrongCa.remove(host('web-1-1')).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(SwarmError);
    expect((err2 as Error).message).toContain(endpoint);
    expect((err2 as Error).message).toMatch(/certificate/);
    expect(classify(err2)).toBe('user');
    await wrongCa.close();
  });

  it('reports an unreachable endpoint as a SwarmError naming it and the cause', async () => {
    const missing = new SwarmOrchestrator({ endpoint: 'unix:///nonexistent.sock', drainSeconds: 5 });
    for (const call of [
      () => missing.joinUserdata(),
      () => missing.drain(host('web-1-1')),
      () => missing.remove(host('web-1-1')),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SwarmError);
      expect((err as Error).message).toMatch(
        /^cannot reach the Docker endpoint unix:\/\/\/nonexistent\.sock \(ENOENT\)/,
      );
      // The engine may be restarting: retried.
      expect(classify(err)).toBe('retryable');
    }
    // A health check does not throw: it fails, and the rollout keeps checking.
    const res = await missing.ready(host('web-1-1'));
    expect(res.ok).toBe(false);
    expect(res.detail).toContain('cannot reach the Docker endpoint unix:///nonexistent.sock (ENOENT)');
    await missing.close();

    const closedPort = await freePort();
    const refused = new SwarmOrchestrator({ endpoint: `tcp://127.0.0.1:${closedPort}`, drainSeconds: 5 });
    const err = await refused.joinUserdata().catch((e: unknown) => e);
    expect((err as Error).message).toContain(
      `cannot reach the Docker endpoint tcp://127.0.0.1:${closedPort} (ECONNREFUSED)`,
    );
    expect(classify(err)).toBe('retryable');
    await refused.close();
  });

  it('refuses ssh:// and malformed endpoints in the constructor, errors for the user to mend', () => {
    expect(() => new SwarmOrchestrator({ endpoint: 'ssh://admin@manager', drainSeconds: 5 })).toThrow(
      'ssh:// Docker endpoints are not supported yet; use tcp:// with tls or unix://',
    );
    for (const opts of [
      { endpoint: 'ssh://admin@manager', drainSeconds: 5 },
      { endpoint: 'ftp://manager', drainSeconds: 5 },
      { endpoint: 'unix:///run/docker.sock', tls, drainSeconds: 5 },
      { endpoint: 'unix:///run/docker.sock', drainSeconds: -1 },
    ]) {
      let err: unknown;
      try {
        new SwarmOrchestrator(opts);
      } catch (e) {
        err = e;
      }
      expect(err, opts.endpoint).toBeInstanceOf(SwarmError);
      expect(classify(err), opts.endpoint).toBe('user');
    }
    expect(() => new SwarmOrchestrator({ endpoint: 'ftp://manager', drainSeconds: 5 })).toThrow(SwarmError);
    expect(() => new SwarmOrchestrator({ endpoint: 'unix://relative.sock', drainSeconds: 5 })).toThrow(SwarmError);
    expect(() => new SwarmOrchestrator({ endpoint: 'http://manager:2375', tls, drainSeconds: 5 })).toThrow(
      /plain http/,
    );
    expect(() => new SwarmOrchestrator({ endpoint: 'unix:///run/docker.sock', tls, drainSeconds: 5 })).toThrow(
      /tls does not apply/,
    );
    expect(() => new SwarmOrchestrator({ endpoint: 'tcp://[::1]:2376', tls, drainSeconds: 5 })).not.toThrow();
  });
});

describe('plugin', () => {
  it('builds the orchestrator from a fleet.yml swarm section, reading the TLS secrets through the runtime', async () => {
    const asked: string[] = [];
    const config: SwarmConfig = {
      type: 'swarm',
      endpoint: `tcp://127.0.0.1:${apiPort}`,
      tls: { ca: { file: 'ca.pem' }, cert: { file: 'cert.pem' }, key: { env: 'SWARM_KEY' } },
      labels: { 'stele.plugin': 'yes' },
      drainSeconds: 30,
      rotateJoinToken: true,
    };
    const secrets = { 'ca.pem': tls.ca, 'cert.pem': tls.cert, SWARM_KEY: tls.key };
    expect(plugin.type).toBe('swarm');
    const orch = await plugin.create(config, context(secrets, asked));
    try {
      expect(asked).toEqual(['orchestrator.tls.ca', 'orchestrator.tls.cert', 'orchestrator.tls.key']);
      expect((await orch.ready(host(hostname))).ok).toBe(true);
      // The labels came along: ready set them.
      expect((await inspectNode()).Spec.Labels).toMatchObject({ 'stele.plugin': 'yes' });
    } finally {
      await orch.close();
    }
  });

  it('reads no secret without tls, and passes a secret that cannot be read on as it is', async () => {
    const asked: string[] = [];
    const plain = await plugin.create(
      { type: 'swarm', endpoint: `unix://${engine.socketPath}`, drainSeconds: 5, rotateJoinToken: true },
      context({}, asked),
    );
    expect(asked).toEqual([]);
    expect((await plain.ready(host(hostname))).ok).toBe(true);
    await plain.close();

    const config: SwarmConfig = {
      type: 'swarm',
      endpoint: `tcp://127.0.0.1:${apiPort}`,
      tls: { ca: { file: 'ca.pem' }, cert: { file: 'cert.pem' }, key: { env: 'SWARM_KEY' } },
      drainSeconds: 30,
      rotateJoinToken: true,
    };
    await expect(plugin.create(config, context({ 'ca.pem': tls.ca, 'cert.pem': tls.cert }))).rejects.toThrow(
      'orchestrator.tls.key: SWARM_KEY is not set',
    );
  });

  it('leaves the join token alone with rotateJoinToken: false (other fleets may be joining with it)', async () => {
    const orch = await plugin.create(
      { type: 'swarm', endpoint: `unix://${engine.socketPath}`, drainSeconds: 5, rotateJoinToken: false },
      context({}),
    );
    const before = await orch.joinUserdata();
    await orch.rotateJoinSecret();
    expect(await orch.joinUserdata()).toEqual(before);
    await orch.close();
  });

  it('refuses an endpoint it cannot use as a SwarmError', async () => {
    const config: SwarmConfig = {
      type: 'swarm',
      endpoint: 'ssh://admin@manager',
      drainSeconds: 5,
      rotateJoinToken: true,
    };
    const err = await plugin.create(config, context({})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwarmError);
    expect((err as Error).message).toBe(
      'ssh:// Docker endpoints are not supported yet; use tcp:// with tls or unix://',
    );
    expect(classify(err)).toBe('user');
  });
});

describe('remove', () => {
  it('succeeds for a host that has no node', async () => {
    const orch = orchestrator();
    await orch.remove(host('web-1-1'));
    await orch.close();
  });

  it('reports what the manager refuses as a SwarmError', async () => {
    // The manager's own node cannot go: swarm wants it demoted first.
    const orch = orchestrator();
    const err = await orch.remove(host(hostname)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwarmError);
    expect((err as Error).message).toContain(`could not remove node ${hostname}`);
    expect((err as Error).message).toMatch(/demoted/);
    expect((await inspectNode()).Spec.Role).toBe('manager');
    await orch.close();
  });
});
