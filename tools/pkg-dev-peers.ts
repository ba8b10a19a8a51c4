// A private Docker Engine + registry for working on pkg/ by hand, with the Debian base loaded:
//
//   pnpm exec tsx tools/pkg-dev-peers.ts [ENV_FILE] &
//   . ENV_FILE            # DOCKER_HOST=unix://…, STELE_REGISTRY=127.0.0.1:PORT
//   docker build --network host -t stele/sshd:dev pkg/sshd
//   kill <pid>            # SIGTERM/SIGINT stop both peers and clean up
//
// ENV_FILE defaults to .stele-tools/pkg-dev-peers.env. The dockerd resolves
// `FROM debian:bookworm-slim` through `--registry-mirror` pointing at the registry, into which
// tools/debian-base.sh pushed the debootstrapped rootfs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDockerd, startRegistry } from '../test/peers/src/index.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const envFile = resolve(process.argv[2] ?? join(root, '.stele-tools', 'pkg-dev-peers.env'));

const registry = await startRegistry();
const dockerd = await startDockerd({ registryMirror: registry.url, insecureRegistries: [registry.host] });
let stopping = false;
const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  rmSync(envFile, { force: true });
  await dockerd.stop().catch((e) => console.error(e));
  await registry.stop().catch((e) => console.error(e));
  process.exit(code);
};
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  const base = execFileSync(join(root, 'tools', 'debian-base.sh'), ['load', registry.host, dockerd.socketPath], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  mkdirSync(dirname(envFile), { recursive: true });
  writeFileSync(
    envFile,
    `export DOCKER_HOST=unix://${dockerd.socketPath}\nexport STELE_REGISTRY=${registry.host}\n` +
      `export STELE_DEBIAN_BASE=${base}\nexport STELE_PEERS_PID=${process.pid}\n`,
  );
  console.log(`ready: ${envFile} (pid ${process.pid})`);
} catch (err) {
  console.error(err);
  await stop(1);
}
setInterval(() => {}, 1 << 30);
