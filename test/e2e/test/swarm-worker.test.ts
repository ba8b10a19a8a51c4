// Issue 6, end to end: every package in pkg/ builds, pushes and is signed against the harness's
// dockerd and registry; a re-run of `stele pkg build` needs no engine; the Swarm worker OS
// (fleets/swarm-worker/os.yml) built from those packages boots in qemu and answers over ssh.
//
// Peers: a registry (docker-registry), a dockerd whose docker.io mirror is that registry (the
// Debian base from tools/debian-base.sh is pushed there as library/debian:bookworm-slim), qemu.
// The CLI runs in-process (main(argv, io)), against a store of its own in a temp dir.

import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type Io, main, root } from '@stele/cli';
import { QemuProvider } from '@stele/provider-qemu';
import {
  bootQemu,
  connectSsh,
  type Dockerd,
  freePort,
  type QemuHandle,
  type Registry,
  runCommand,
  sshExec,
  sshKeyPair,
  sshUntil,
  startDockerd,
  startRegistry,
  tail,
} from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const MANIFEST = join(REPO, 'fleets/swarm-worker/os.yml');
/** Every package of the repo's pkg/ (a directory with a build.yml). */
const PACKAGES = readdirSync(join(REPO, 'pkg'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(REPO, 'pkg', d.name, 'build.yml')))
  .map((d) => d.name)
  .sort();
const KEY_PASSWORD = 'e2e-passphrase';
const DEAD_ENGINE = 'unix:///nonexistent/stele-e2e/docker.sock';
const STELE_BIN = join(REPO, 'packages/cli/bin/stele.js');

let registry: Registry | undefined;
let dockerd: Dockerd | undefined;
let vm: QemuHandle | undefined;
let manager: Dockerd | undefined;
let work: string;
let org: string;
/** name → `REGISTRY/stele/name:tag`, filled by the build test. */
const pushed = new Map<string, string>();

interface Run {
  code: number;
  out: string;
  err: string;
  ms: number;
}

/** The CLI's environment: the test's store, home, key passphrase and engine. */
function steleEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: work,
    STELE_CACHE: join(work, 'store'),
    COSIGN_PASSWORD: KEY_PASSWORD,
    ...(dockerd ? { DOCKER_HOST: `unix://${dockerd.socketPath}` } : {}),
  };
}

/** `stele ARGV` in-process, with the test's store, key passphrase and engine. */
async function stele(argv: string[], env: Record<string, string> = {}): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  stderr.on('data', (c: Buffer) => {
    err += c.toString('utf8');
  });
  const io: Io = {
    stdout,
    stderr,
    cwd: REPO,
    env: { ...steleEnv(), ...env },
  };
  const t0 = performance.now();
  const code = await main(argv, io);
  return { code, out, err, ms: performance.now() - t0 };
}

function skopeo(args: string[]): Promise<string> {
  return new Promise((ok, fail) => {
    execFile('skopeo', args, { timeout: 60_000, env: { ...process.env, HOME: work } }, (e, stdout, stderr) =>
      e ? fail(new Error(`skopeo ${args.join(' ')}: ${e.message}\n${stderr}`)) : ok(stdout),
    );
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'stele-e2e-swarm-'));
  registry = await startRegistry();
  dockerd = await startDockerd({ registryMirror: registry.url, insecureRegistries: [registry.host] });
  org = `${registry.host}/stele`;
  // The Debian base (debootstrap once, cached under .stele-tools/), as debian:bookworm-slim.
  await runCommand(join(REPO, 'tools/debian-base.sh'), ['load', registry.host, dockerd.socketPath], {
    timeoutMs: 600_000,
  });
  const key = await stele(['key', 'generate', '--output-prefix', join(work, 'cosign')]);
  expect(key.code, key.err).toBe(0);
}, 900_000);

afterAll(async () => {
  const results = await Promise.allSettled([vm?.stop(), manager?.stop(), dockerd?.stop(), registry?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length) throw new Error(failed.map((f) => String(f.reason)).join('\n'));
}, 120_000);

describe('the Swarm worker packages and OS, end to end', () => {
  it('every package in pkg/ builds, pushes a multi-arch index and is signed; stele verify accepts it', async () => {
    expect(PACKAGES).toEqual(
      expect.arrayContaining(['dhcpcd', 'docker', 'init', 'kernel', 'metadata', 'runc', 'sshd', 'swarm-join']),
    );
    const build = await stele([
      'pkg',
      'build',
      '--push',
      '--sign-key',
      join(work, 'cosign.key'),
      '--org',
      org,
      '--json',
      ...PACKAGES.map((p) => `pkg/${p}`),
    ]);
    console.log(`stele pkg build --push of ${PACKAGES.length} packages: ${(build.ms / 1000).toFixed(1)} s`);
    expect(build.code, tail(build.err, 60)).toBe(0);
    const results = JSON.parse(build.out) as {
      dir: string;
      ref: string;
      fullRef: string;
      arches: { arch: string; status: string; seconds?: number }[];
      pushed: string[];
      signed: string[];
    }[];
    for (const name of PACKAGES) {
      const r = results.find((x) => x.dir === join(REPO, 'pkg', name));
      expect(r, `no result for pkg/${name}`).toBeDefined();
      if (!r) continue;
      expect(r.ref.startsWith(`${org}/${name}:`), r.ref).toBe(true);
      expect(r.arches.map((a) => [a.arch, a.status])).toEqual([['amd64', 'built']]);
      expect(r.pushed).toContain(r.ref);
      expect(r.signed).toEqual([r.ref]);
      pushed.set(name, r.ref);
      console.log(`  ${r.ref}: built in ${r.arches[0]?.seconds?.toFixed(1)} s`);
    }

    const pub = join(work, 'cosign.pub');
    for (const [name, ref] of pushed) {
      // An independent reader of the registry: skopeo sees an image index naming its arches.
      const raw = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])) as {
        mediaType?: string;
        manifests?: { digest: string; platform?: { architecture?: string; os?: string } }[];
      };
      expect(raw.mediaType, name).toBe('application/vnd.oci.image.index.v1+json');
      expect(raw.manifests?.map((m) => `${m.platform?.os}/${m.platform?.architecture}`)).toEqual(['linux/amd64']);

      const verify = await stele(['verify', ref, '--key', pub, '--json']);
      expect(verify.code, `${ref}: ${verify.err}`).toBe(0);
      const reports = JSON.parse(verify.out) as { digest: string; verified: unknown[] }[];
      // The index and its one manifest, each with a valid signature.
      expect(reports.map((r) => r.digest).sort()).toEqual(
        [...(raw.manifests ?? []).map((m) => m.digest), await indexDigest(ref)].sort(),
      );
      for (const rep of reports) expect(rep.verified.length, `${ref} ${rep.digest}`).toBeGreaterThanOrEqual(1);
    }

    // The check can fail: a key that signed nothing is refused.
    const other = await stele(['key', 'generate', '--output-prefix', join(work, 'other')]);
    expect(other.code, other.err).toBe(0);
    const refused = await stele(['verify', pushed.get('sshd') as string, '--key', join(work, 'other.pub')]);
    expect(refused.code).not.toBe(0);
  });

  it('re-running stele pkg build on an unchanged package makes no engine call (timing: bench/pkg-rebuild.ts)', async () => {
    const ref = pushed.get('sshd');
    expect(ref, 'the build test pushed pkg/sshd').toBeDefined();
    // No engine: any call to it would fail with "cannot reach a Docker Engine".
    const again = await stele(['pkg', 'build', '--org', org, '--json', 'pkg/sshd'], { DOCKER_HOST: DEAD_ENGINE });
    console.log(`re-run of stele pkg build pkg/sshd without an engine: ${again.ms.toFixed(0)} ms`);
    expect(again.code, again.err).toBe(0);
    const [r] = JSON.parse(again.out) as { ref: string; arches: { arch: string; status: string }[] }[];
    expect(r?.ref).toBe(ref);
    expect(r?.arches).toEqual([expect.objectContaining({ arch: 'amd64', status: 'cached' })]);

    // The same as a process, as a user runs it (node + tsx start-up included): recorded, and it
    // too must not touch the engine.
    const t0 = performance.now();
    const proc = await runCommand(process.execPath, [STELE_BIN, 'pkg', 'build', '--org', org, '--json', 'pkg/sshd'], {
      cwd: REPO,
      env: { ...steleEnv(), DOCKER_HOST: DEAD_ENGINE },
      timeoutMs: 60_000,
    });
    console.log(`the same as a process (node ${STELE_BIN}): ${(performance.now() - t0).toFixed(0)} ms`);
    expect(JSON.parse(proc.stdout)[0].arches).toEqual([expect.objectContaining({ status: 'cached' })]);
  });

  it.skipIf(!buildCommand())(
    'stele build of fleets/swarm-worker/os.yml boots in qemu, answers over ssh and joins a real Swarm manager',
    async () => {
      expect(pushed.size, 'the build test pushed every package').toBe(PACKAGES.length);
      const out = join(work, 'os');
      // The fleet's manifest with its @pkg: templates, expanded against the registry's org; every
      // image must carry a valid signature by the key the packages were signed with.
      const built = await stele([
        'build',
        '--format',
        'kernel+initrd',
        '--dir',
        out,
        '--name',
        'swarm-worker',
        '--pkg-org',
        org,
        '--verify-key',
        join(work, 'cosign.pub'),
        '--json',
        manifestCopy(),
      ]);
      console.log(`stele build (kernel+initrd): ${(built.ms / 1000).toFixed(1)} s`);
      expect(built.code, tail(built.err, 40)).toBe(0);
      const result = JSON.parse(built.out) as {
        plan: { images: { ref: string }[] };
        outputs: { format: string; files: string[] }[];
      };
      // The images are the packages just pushed, with the tags of this commit.
      expect(result.plan.images.map((i) => i.ref).sort()).toEqual([...pushed.values()].sort());
      const files = result.outputs.find((o) => o.format === 'kernel+initrd')?.files ?? [];
      const file = (suffix: string) => {
        const f = files.find((x) => x.endsWith(suffix));
        expect(f, `${suffix} in ${files.join(', ')}`).toBeDefined();
        return f as string;
      };
      const kernel = file('-kernel');
      const initrd = file('-initrd.img');
      const cmdline = readFileSync(file('-cmdline'), 'utf8').trim();

      // A real Swarm manager on the host: the guest reaches the host's loopback as 10.0.2.2
      // (qemu user networking), so the manager listens on loopback and advertises that address.
      manager = await startDockerd();
      const swarmPort = await freePort();
      await manager.docker.swarmInit({ ListenAddr: `127.0.0.1:${swarmPort}`, AdvertiseAddr: `10.0.2.2:${swarmPort}` });
      const token = ((await manager.docker.swarmInspect()) as { JoinTokens: { Worker: string } }).JoinTokens.Worker;

      const keys = sshKeyPair('stele-e2e');
      const userdata = {
        hostname: { content: 'e2e-worker' },
        ssh: { entries: { authorized_keys: { perm: '0600', content: `${keys.public}\n` } } },
        swarm: { entries: { manager: { content: `10.0.2.2:${swarmPort}` }, token: { content: token } } },
      };
      const port = await freePort();
      vm = await bootQemu({
        kernel,
        initrd,
        append: `${cmdline} panic=-1 stele.userdata=${Buffer.from(JSON.stringify(userdata)).toString('base64')}`,
        memoryMb: 2560,
        hostForwards: [{ hostPort: port, guestPort: 22 }],
        keepRunning: true,
        name: 'swarm-worker',
      });
      const t0 = Date.now();
      try {
        const ssh = await connectSsh(port, keys.private, 300_000);
        console.log(`ssh answered ${((Date.now() - t0) / 1000).toFixed(0)} s after qemu started`);
        try {
          expect((await sshExec(ssh, 'hostname')).stdout.trim()).toBe('e2e-worker');
          // The docker service may still be starting: ask until the engine answers.
          const last = await sshUntil(ssh, "docker info --format '{{.ServerVersion}}'", 240_000);
          console.log(`docker info answered ${((Date.now() - t0) / 1000).toFixed(0)} s after qemu started`);
          expect(last.code, `docker info: ${last.stderr}\n--- console ---\n${tail(vm.log(), 60)}`).toBe(0);
          expect(last.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
          // pkg/swarm-join joined the manager with the token from user data: the manager lists
          // the guest as a ready worker.
          const joined = await waitFor(async () => {
            const nodes = (await manager?.docker.listNodes()) as NodeInfo[];
            return nodes.find((n) => n.Description?.Hostname === 'e2e-worker' && n.Status?.State === 'ready');
          }, 180_000);
          console.log(
            `the manager lists the worker ready ${((Date.now() - t0) / 1000).toFixed(0)} s after qemu started`,
          );
          expect(
            joined?.Spec?.Role,
            `swarm-join: ${(await sshExec(ssh, 'cat /var/log/swarm-join* 2>&1; true')).stdout}`,
          ).toBe('worker');
          const info = await sshExec(ssh, "docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}'");
          expect(info.stdout.trim()).toBe(`active ${joined?.ID}`);
        } finally {
          ssh.end();
        }
      } catch (err) {
        (err as Error).message += `\n--- console (tail) ---\n${tail(vm.log(), 80)}`;
        throw err;
      } finally {
        await vm.stop();
        await manager?.stop();
      }
    },
  );
});

describe('stele fleet rollout on qemu with a real Swarm manager', () => {
  let mgr: Dockerd | undefined;
  let fleetDir = '';
  afterAll(async () => {
    // The VMs outlive the CLI (daemonized qemu): destroy whatever is left.
    const vms = join(fleetDir, 'dev', '.stele', 'qemu');
    if (fleetDir && existsSync(vms)) {
      const provider = new QemuProvider({ fleet: 'e2e', dir: vms });
      for (const h of await provider.list().catch(() => [])) {
        await provider
          .destroy({ name: h.name, image: '', generation: 0, status: 'live', createdAt: '' })
          .catch(() => undefined);
      }
    }
    await mgr?.stop();
  });

  it.skipIf(!buildCommand())(
    'a one-host fleet comes up and joins; a new image replaces it blue-green; a killed rollout resumes without a second VM; a failing image is rolled back; a lost state and a dead VM are seen',
    async () => {
      expect(pushed.size, 'the build test pushed every package').toBe(PACKAGES.length);
      mgr = await startDockerd();
      const swarmPort = await freePort();
      await mgr.docker.swarmInit({ ListenAddr: `127.0.0.1:${swarmPort}`, AdvertiseAddr: `10.0.2.2:${swarmPort}` });
      fleetDir = join(work, 'fleet');
      mkdirSync(join(fleetDir, 'dev'), { recursive: true });
      // The image: the Swarm worker OS plus a file that says its version.
      const base = readFileSync(manifestCopy(), 'utf8');
      expect(base).toContain('\nfiles:\n');
      const image = (v: string) =>
        writeFileSync(
          join(fleetDir, 'os.yml'),
          base.replace('\nfiles:\n', `\nfiles:\n  - path: etc/stele-release\n    contents: "${v}"\n`),
        );
      image('1');
      const keys = sshKeyPair('stele-fleet-e2e');
      writeFileSync(join(fleetDir, 'id'), keys.private, { mode: 0o600 });
      const fleetFile = join(fleetDir, 'dev', 'fleet.yml');
      writeFileSync(
        fleetFile,
        [
          'name: e2e',
          'image: ../os.yml',
          'hosts: 1',
          'provider:',
          '  type: qemu',
          '  memoryMiB: 2560',
          '  accel: tcg',
          `  sshPortBase: ${await freePort()}`,
          'strategy:',
          '  bakeSeconds: 5',
          '  healthTimeoutSeconds: 420',
          'ssh:',
          '  privateKey: { file: ../id }',
          'health:',
          `  - type: ssh`,
          `    command: docker info --format '{{.Swarm.LocalNodeState}}' | grep -qx active`,
          '    timeoutSeconds: 30',
          '  - type: swarm-node-ready',
          'orchestrator:',
          '  type: swarm',
          `  endpoint: unix://${mgr.socketPath}`,
          '  drainSeconds: 10',
          '',
        ].join('\n'),
      );
      const args = ['fleet', 'rollout', '--pkg-org', org, '--verify-key', join(work, 'cosign.pub'), fleetFile];
      const nodes = async () =>
        (((await mgr?.docker.listNodes()) ?? []) as NodeInfo[])
          .filter((n) => n.Spec?.Role === 'worker')
          .map((n) => `${n.Description?.Hostname}:${n.Status?.State}`)
          .sort();

      const swarm = mgr;
      const workerToken = async () =>
        ((await swarm.docker.swarmInspect()) as { JoinTokens: { Worker: string } }).JoinTokens.Worker;
      const tokenBefore = await workerToken();
      const first = await stele(args);
      console.log(`first rollout: ${(first.ms / 1000).toFixed(0)} s`);
      expect(first.code, `${first.out}\n${first.err}`).toBe(0);
      expect(await nodes()).toEqual(['e2e-1-1:ready']);
      const again = await stele(['fleet', 'plan', '--pkg-org', org, fleetFile]);
      expect(again.out).toMatch(/nothing to do/);
      // The join token the host got is no longer valid (rotated after the rollout), and it never
      // was on a command line any local user could read, nor in the serial console's log.
      expect(await workerToken()).not.toBe(tokenBefore);
      const vmDir = (name: string) => join(fleetDir, 'dev', '.stele', 'qemu', 'hosts', name);
      const pid1 = readFileSync(join(vmDir('e2e-1-1'), 'qemu.pid'), 'utf8').trim();
      expect(readFileSync(`/proc/${pid1}/cmdline`, 'utf8')).not.toContain(tokenBefore);
      expect(readFileSync(join(vmDir('e2e-1-1'), 'console.log'), 'utf8')).not.toContain(tokenBefore);

      // A new image; the rollout is killed once its new host exists, then run again.
      image('2');
      const child = spawn(process.execPath, [STELE_BIN, ...args], { cwd: REPO, env: steleEnv() });
      let seen = '';
      await new Promise<void>((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`no new host within 10 min:\n${seen}`)), 600_000);
        child.stdout.on('data', (c: Buffer) => {
          seen += c.toString();
          if (/e2e-2-1: created/.test(seen)) {
            clearTimeout(timer);
            child.kill('SIGKILL');
            ok();
          }
        });
        child.on('exit', () => {
          clearTimeout(timer);
          ok();
        });
      });
      expect(seen, 'the first run was killed after creating its host').toMatch(/e2e-2-1: created/);
      const pidFile = join(vmDir('e2e-2-1'), 'qemu.pid');
      const pidBefore = readFileSync(pidFile, 'utf8').trim();
      const status = await stele(['fleet', 'status', fleetFile]);
      expect(status.out).toMatch(/rollout 2 to [0-9a-f]{12}: running/);

      const resumed = await stele(args);
      console.log(`resumed rollout: ${(resumed.ms / 1000).toFixed(0)} s`);
      expect(resumed.code, `${resumed.out}\n${resumed.err}`).toBe(0);
      expect(resumed.out).toMatch(/resuming rollout 2/);
      expect(resumed.out).not.toMatch(/e2e-2-1: creating/); // found, not made again
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(pidBefore);
      expect(await nodes()).toEqual(['e2e-2-1:ready']); // the old node drained and removed
      expect(existsSync(vmDir('e2e-1-1'))).toBe(false);
      const end = JSON.parse((await stele(['fleet', 'status', '--json', fleetFile])).out);
      expect(end.hosts.map((h: { name: string }) => h.name)).toEqual(['e2e-2-1']);
      expect(end.rollout.phase).toBe('done');

      // An image whose hosts never pass a check (nothing answers on port 9): rolled back, the
      // fleet keeps its host.
      image('3');
      writeFileSync(
        fleetFile,
        readFileSync(fleetFile, 'utf8')
          .replace('healthTimeoutSeconds: 420', 'healthTimeoutSeconds: 40')
          .replace('health:\n', 'health:\n  - type: http\n    port: 9\n'),
      );
      const failed = await stele(args);
      expect(failed.code).toBe(1);
      expect(failed.err).toMatch(/e2e-3-1 did not pass its health checks in 40 s: .*rolled back: removed e2e-3-1/);
      expect(existsSync(vmDir('e2e-3-1'))).toBe(false);
      const after = JSON.parse((await stele(['fleet', 'status', '--json', fleetFile])).out);
      expect(after.hosts.map((h: { name: string }) => h.name)).toEqual(['e2e-2-1']);
      expect(after.rollout.phase).toBe('rolled-back');
      expect(await nodes()).toEqual(['e2e-2-1:ready']);

      // The state is lost: the running host is reported as leaked (not silently forgotten),
      // `status --repair` adopts it, and nothing is rolled twice.
      image('2');
      writeFileSync(fleetFile, readFileSync(fleetFile, 'utf8').replace('  - type: http\n    port: 9\n', ''));
      const stateFile = join(fleetDir, 'dev', '.stele', 'state', 'e2e.json');
      rmSync(stateFile);
      const leaked = await stele(['fleet', 'status', '--refresh', fleetFile]);
      expect(leaked.out).toMatch(/e2e-2-1 +leaked/);
      const repaired = await stele(['fleet', 'status', '--repair', fleetFile]);
      expect(repaired.code, repaired.err).toBe(0);
      expect(repaired.out).toMatch(/1 host\(s\) adopted \(e2e-2-1\)/);
      const calm = await stele(['fleet', 'plan', '--pkg-org', org, fleetFile]);
      expect(calm.out, calm.err).toMatch(/nothing to do/);

      // Its VM dies: status says lost, and the plan replaces it under a new name.
      process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
      await new Promise((r) => setTimeout(r, 1_000));
      const lost = await stele(['fleet', 'status', '--refresh', fleetFile]);
      expect(lost.out).toMatch(/e2e-2-1 +lost/);
      const replace = await stele(['fleet', 'plan', '--pkg-org', org, fleetFile]);
      expect(replace.out).toMatch(/clean up e2e-2-1/);
      expect(replace.out).toMatch(/start e2e-[3-9]-1/);
    },
  );
});

interface NodeInfo {
  ID: string;
  Description?: { Hostname?: string };
  Status?: { State?: string };
  Spec?: { Role?: string };
}

/** Polls `probe` every 3 s until it returns something, or `timeoutMs` has passed (undefined). */
async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe().catch(() => undefined);
    if (got !== undefined || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 3_000));
  }
}

/** The `stele build` command, if this CLI has one (it is being written alongside). */
function buildCommand() {
  return root.subcommands?.find((c) => c.name === 'build');
}

/**
 * A copy of the fleet's manifest in the temp dir (`stele build` writes its lock file beside the
 * manifest, and the repo is not ours to write), its `@pkg:` paths made absolute.
 */
function manifestCopy(): string {
  const text = readFileSync(MANIFEST, 'utf8');
  const copy = text.replace(
    /@pkg:(\.\.\/\.\.\/pkg\/[a-z0-9-]+)/g,
    (_m, rel: string) => `@pkg:${resolve(dirname(MANIFEST), rel)}`,
  );
  expect(copy).toContain(`@pkg:${REPO}/pkg/kernel`);
  const file = join(work, 'swarm-worker.yml');
  writeFileSync(file, copy);
  return file;
}

async function indexDigest(ref: string): Promise<string> {
  const out = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
  const { createHash } = await import('node:crypto');
  return `sha256:${createHash('sha256').update(out).digest('hex')}`;
}
