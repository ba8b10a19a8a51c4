// vSphere peer: our own Go main (test/peers/go/vcsim) over Debian's govmomi `simulator` library,
// built offline in GOPATH mode into a tools cache keyed by the hash of its source. It serves the
// VPX model (a datacenter with hosts, clusters and VMs) plus /stele/faults, which arms task faults.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type PeerProcess, removeDir, runCommand, spawnPeer, tempDir, waitFor } from './process.ts';

const GO_SOURCE_DIR = fileURLToPath(new URL('../go/vcsim/', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const GOPATH = '/usr/share/gocode';

/** `$STELE_TOOLS_DIR`, else `<repo>/.stele-tools` (gitignored). */
export function steleToolsDir(): string {
  return process.env.STELE_TOOLS_DIR ?? join(REPO_ROOT, '.stele-tools');
}

export interface VcsimBinary {
  path: string;
  /** True when this call compiled it (the cache missed). */
  built: boolean;
  /** Wall time of the `go build`, 0 on a cache hit. */
  buildMs: number;
}

async function sourceHash(): Promise<string> {
  const h = createHash('sha256');
  for (const name of readdirSync(GO_SOURCE_DIR).sort()) {
    if (!name.endsWith('.go')) continue;
    h.update(`${name}\0`);
    h.update(readFileSync(join(GO_SOURCE_DIR, name)));
    h.update('\0');
  }
  // The toolchain and the simulator library are inputs too: a Debian upgrade must rebuild.
  const { stdout } = await runCommand('go', ['version'], { timeoutMs: 30_000 });
  h.update(stdout);
  const lib = join(GOPATH, 'src/github.com/vmware/govmomi/go.mod');
  if (existsSync(lib)) h.update(readFileSync(lib));
  return h.digest('hex').slice(0, 16);
}

/**
 * Builds the vcsim binary once per source hash into the tools cache. Concurrent callers may both
 * build, but each builds into its own temp dir and renames into place, so the cache never holds a
 * partial binary.
 */
export async function ensureVcsimBinary(opts: { toolsDir?: string } = {}): Promise<VcsimBinary> {
  const hash = await sourceHash();
  const dir = join(opts.toolsDir ?? steleToolsDir(), 'vcsim');
  const path = join(dir, `stele-vcsim-${hash}`);
  if (existsSync(path)) return { path, built: false, buildMs: 0 };
  if (!existsSync(join(GOPATH, 'src/github.com/vmware/govmomi/simulator'))) {
    throw new Error(
      `vcsim: govmomi's simulator library is missing under ${GOPATH}; apt-get install golang-github-vmware-govmomi-dev`,
    );
  }
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.build-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(tmp);
  const started = Date.now();
  try {
    await runCommand('go', ['build', '-o', join(tmp, 'stele-vcsim'), '.'], {
      cwd: GO_SOURCE_DIR,
      env: { ...process.env, GOPATH, GO111MODULE: 'off', GOFLAGS: '' },
      timeoutMs: 300_000,
    });
    chmodSync(join(tmp, 'stele-vcsim'), 0o755);
    renameSync(join(tmp, 'stele-vcsim'), path);
  } catch (err) {
    throw new Error(`vcsim: go build in ${GO_SOURCE_DIR} failed: ${(err as Error).message}`);
  } finally {
    removeDir(tmp);
  }
  // Binaries of older sources are dead weight (25 MB each); a process still running one keeps
  // its inode, so removing them is safe.
  for (const name of readdirSync(dir)) {
    if (name.startsWith('stele-vcsim-') && join(dir, name) !== path) rmSync(join(dir, name), { force: true });
  }
  return { path, built: true, buildMs: Date.now() - started };
}

export interface VcsimArmedFault {
  descriptionId: string;
  fault: string;
  /** Tasks still to fail. */
  count: number;
  /** Managed object id (e.g. `vm-42`) the fault is limited to, if any. */
  entity?: string;
  /** Tasks failed so far by this entry. */
  fired: number;
}

export interface Vcsim {
  /** Base URL, e.g. `http://127.0.0.1:PORT` (https with `tls`). */
  url: string;
  /** SOAP endpoint: `${url}/sdk`. */
  sdkUrl: string;
  username: string;
  password: string;
  /** PEM of the self-signed certificate (only with `tls`); trust it instead of disabling checks. */
  certificatePem?: string;
  /**
   * The next `count` tasks whose `info.descriptionId` is `descriptionId` (e.g.
   * `VirtualMachine.powerOn`) end in state `error` with the named vim25 fault (e.g. `InvalidState`).
   * `entity` (a managed object id like `vm-42`) limits it to tasks on that object.
   */
  armFault(descriptionId: string, fault: string, count?: number, entity?: string): Promise<void>;
  /** Faults still armed. */
  faults(): Promise<VcsimArmedFault[]>;
  /**
   * Tasks created since start (or the last clearFaults), by descriptionId — the simulator's ids,
   * e.g. `VirtualMachine.powerOn`, `Folder.createVm`, `VirtualMachine.reconfigVm`.
   */
  taskCounts(): Promise<Record<string, number>>;
  /** Disarms every fault and zeroes the task counts. */
  clearFaults(): Promise<void>;
  process: PeerProcess;
  /** Milliseconds from spawn to the simulator answering. */
  startMs: number;
  binary: VcsimBinary;
  stop(): Promise<void>;
}

export interface VcsimOptions {
  tls?: boolean;
  username?: string;
}

interface ReadyLine {
  url: string;
  sdk: string;
  faults: string;
  certPem?: string;
}

/** Starts vcsim (VPX model) on a kernel-chosen loopback port; always `stop()` it. */
export async function startVcsim(opts: VcsimOptions = {}): Promise<Vcsim> {
  const binary = await ensureVcsimBinary();
  const dir = tempDir('vcsim');
  const username = opts.username ?? 'stele';
  const password = randomBytes(12).toString('base64url');
  const args = ['-port', '0'];
  if (opts.tls) args.push('-tls');
  const started = Date.now();
  // Port 0: the simulator binds and reports the port itself, so there is no free-port race.
  const proc = spawnPeer('vcsim', binary.path, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, VCSIM_USERNAME: username, VCSIM_PASSWORD: password },
  });
  try {
    const ready = await waitFor(
      async () => {
        const line = proc
          .output()
          .split('\n')
          .find((l) => l.startsWith('{"'));
        return line ? (JSON.parse(line) as ReadyLine) : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 25, proc, what: 'vcsim start' },
    );
    const faultsUrl = ready.faults;
    // The /stele endpoints carry no secrets; over https trust the simulator's own certificate.
    const control = (method: string, body?: unknown) => controlRequest(faultsUrl, method, body, ready.certPem);
    const handle: Vcsim = {
      url: ready.url,
      sdkUrl: ready.sdk,
      username,
      password,
      certificatePem: ready.certPem,
      process: proc,
      startMs: Date.now() - started,
      binary,
      async armFault(descriptionId, fault, count = 1, entity) {
        await control('POST', { descriptionId, fault, count, ...(entity ? { entity } : {}) });
      },
      async faults() {
        return ((await control('GET')) as { faults: VcsimArmedFault[] }).faults;
      },
      async taskCounts() {
        return ((await control('GET')) as { tasks: Record<string, number> }).tasks;
      },
      async clearFaults() {
        await control('DELETE');
      },
      async stop() {
        try {
          await proc.stop(5_000);
        } finally {
          removeDir(dir);
        }
      },
    };
    return handle;
  } catch (err) {
    await proc.stop(2_000);
    removeDir(dir);
    throw err;
  }
}

async function controlRequest(url: string, method: string, body: unknown, ca?: string): Promise<unknown> {
  const res = await pinnedHttpRequest(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    ca,
  });
  const parsed = res.body ? (JSON.parse(res.body) as { error?: string }) : {};
  if (res.status >= 400) throw new Error(`vcsim ${method} /stele/faults: ${res.status} ${parsed.error ?? res.body}`);
  return parsed;
}

export interface PinnedHttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * A small HTTP(S) request over node:http(s), so a test can trust one self-signed certificate
 * (`ca`) for one request without touching process-wide TLS settings.
 */
export async function pinnedHttpRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; ca?: string; timeoutMs?: number } = {},
): Promise<PinnedHttpResult> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: opts.method ?? 'GET',
        headers:
          opts.body === undefined ? opts.headers : { ...opts.headers, 'content-length': Buffer.byteLength(opts.body) },
        ...(opts.ca ? { ca: opts.ca } : {}),
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${opts.method ?? 'GET'} ${url}: timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}
