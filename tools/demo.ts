// The main job, end to end on this machine, with real parts only:
//   packages → signed, pushed images → a Swarm worker OS image → booted in qemu → `docker info`
// over ssh. A throwaway registry and Docker Engine are started for it (test-peers) and stopped
// at the end; the Debian base comes from tools/debian-base.sh (debootstrap, cached).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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
} from '../test/peers/src/index.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const STELE = join(REPO, 'packages/cli/bin/stele.js');
const work = mkdtempSync(join(tmpdir(), 'stele-demo-'));
const t0 = Date.now();
const say = (s: string) => console.log(`\n== [${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${s}`);

let registry: Registry | undefined;
let dockerd: Dockerd | undefined;
let vm: QemuHandle | undefined;

function stele(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  console.log(`$ stele ${args.join(' ')}`);
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [STELE, ...args], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      process.stdout.write(c);
    });
    child.on('close', (code) => (code === 0 ? ok(out) : fail(new Error(`stele ${args[0]} exited ${code}`))));
  });
}

try {
  say('a throwaway OCI registry and Docker Engine on loopback (the Debian base as debian:bookworm-slim)');
  registry = await startRegistry();
  dockerd = await startDockerd({ registryMirror: registry.url, insecureRegistries: [registry.host] });
  await runCommand(join(REPO, 'tools/debian-base.sh'), ['load', registry.host, dockerd.socketPath], {
    timeoutMs: 900_000,
  });
  const org = `${registry.host}/stele`;
  const env = {
    ...process.env,
    HOME: work,
    STELE_CACHE: join(work, 'store'),
    DOCKER_HOST: `unix://${dockerd.socketPath}`,
    COSIGN_PASSWORD: 'demo-passphrase',
  };

  say('a signing key (cosign format)');
  await stele(['key', 'generate', '--output-prefix', join(work, 'cosign')], env);

  say('build every package in pkg/, push per-arch tags + index + SBOMs to the registry, sign them');
  const pkgs = ['dhcpcd', 'docker', 'init', 'kernel', 'metadata', 'runc', 'sshd', 'swarm-join'];
  await stele(
    ['pkg', 'build', '--push', '--sign-key', join(work, 'cosign.key'), '--org', org, ...pkgs.map((p) => `pkg/${p}`)],
    env,
  );
  say('again: nothing changed, so no engine call at all');
  await stele(['pkg', 'build', '--org', org, 'pkg/sshd'], { ...env, DOCKER_HOST: 'unix:///nonexistent.sock' });

  say('the Swarm worker OS from those packages: @pkg: templates, every signature verified, no Docker');
  const manifest = join(work, 'swarm-worker.yml');
  writeFileSync(
    manifest,
    readFileSync(join(REPO, 'fleets/swarm-worker/os.yml'), 'utf8').replace(
      /@pkg:\.\.\/\.\.\/pkg\//g,
      `@pkg:${join(REPO, 'pkg')}/`,
    ),
  );
  const out = join(work, 'out');
  await stele(
    [
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
      manifest,
    ],
    env,
  );

  say('boot it in qemu (TCG), log in over ssh with a key from user data, ask the guest for docker info');
  const keys = sshKeyPair('stele-demo');
  const userdata = {
    hostname: { content: 'demo-worker' },
    ssh: { entries: { authorized_keys: { perm: '0600', content: `${keys.public}\n` } } },
  };
  const port = await freePort();
  const cmdline = readFileSync(join(out, 'swarm-worker-cmdline'), 'utf8').trim();
  vm = await bootQemu({
    kernel: join(out, 'swarm-worker-kernel'),
    initrd: join(out, 'swarm-worker-initrd.img'),
    append: `${cmdline} panic=-1 stele.userdata=${Buffer.from(JSON.stringify(userdata)).toString('base64')}`,
    memoryMb: 2560,
    hostForwards: [{ hostPort: port, guestPort: 22 }],
    keepRunning: true,
    name: 'demo-swarm-worker',
  });
  const ssh = await connectSsh(port, keys.private, 300_000);
  try {
    console.log(`guest hostname: ${(await sshExec(ssh, 'hostname')).stdout.trim()}`);
    const info = await sshUntil(ssh, "docker info --format '{{.ServerVersion}}'", 300_000);
    if (info.code !== 0) throw new Error(`docker info in the guest failed: ${info.stderr.trim()}`);
    console.log(`docker info in the guest: Docker Engine ${info.stdout.trim()}`);
  } finally {
    ssh.end();
  }

  say('plan a blue-green rollout of this image to the production fleet (3 hosts on vSphere; nothing is changed)');
  // --no-refresh: the plan from the state alone — asking vCenter would send packets off this machine.
  await stele(
    ['fleet', 'plan', '--no-refresh', '--pkg-org', org, join(REPO, 'fleets/swarm-worker/prod/fleet.yml')],
    env,
  );

  say(`done. 'stele fleet rollout' works with qemu hosts and a Swarm manager (test/e2e); vSphere and AWS: not yet`);
} catch (err) {
  console.error(`\ndemo failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await Promise.allSettled([vm?.stop(), dockerd?.stop(), registry?.stop()]);
  rmSync(work, { recursive: true, force: true });
}
