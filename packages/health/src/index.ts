// The checks a new host must pass (fleet.yml `health`): a command over ssh, an HTTP status, the
// orchestrator's view of the node. A host is healthy when every check passes; each attempt has
// its own timeout, and the first failure is what the result reports.
import { createHash } from 'node:crypto';
import type { HealthChecker, HealthResult, HostRecord } from '@stele/fleet';
import type { HealthCheck } from '@stele/manifest';
import ssh2 from 'ssh2';

// ssh2 is CommonJS: its named exports come through the default import.
const { Client } = ssh2;

export interface Endpoints {
  /** Where to reach the host's `guestPort` from here. */
  endpoint(host: HostRecord, guestPort: number): Promise<{ host: string; port: number } | undefined>;
}

/** Host keys seen at first contact (trust on first use), by host name; the fleet's state keeps them. */
export interface HostKeyPins {
  get(host: string): Promise<string | undefined>;
  set(host: string, fingerprint: string): Promise<void>;
}

/** OpenSSH's fingerprint of a host key: SHA256:<base64, no padding>. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

export interface HealthDeps {
  endpoints: Endpoints;
  /**
   * For `ssh` checks (fleet.yml `ssh`, the key already read). With `pins`, a host's key is pinned
   * at first contact and a later different key fails the check.
   */
  ssh?: { user: string; port: number; privateKey: string; pins?: HostKeyPins };
  /** For `swarm-node-ready` / `ecs-agent-connected`. */
  orchestrator?: { ready(host: HostRecord): Promise<HealthResult> };
}

const DEFAULT_TIMEOUT_S = 10;

function sshRun(
  name: string,
  target: { host: string; port: number },
  auth: { user: string; privateKey: string; pins?: HostKeyPins },
  command: string,
  timeoutMs: number,
): Promise<HealthResult> {
  return new Promise((resolve) => {
    const c = new Client();
    let settled = false;
    let refused: string | undefined;
    const done = (r: HealthResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      c.end();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, detail: `ssh: no answer in ${timeoutMs / 1000} s` }), timeoutMs);
    c.on('error', (e) => done({ ok: false, detail: refused ?? `ssh: ${e.message}` }));
    c.on('ready', () => {
      c.exec(command, (err, stream) => {
        if (err) return done({ ok: false, detail: `ssh: ${err.message}` });
        let stderr = '';
        let code: number | null = null;
        stream.on('data', () => {});
        stream.stderr.on('data', (d: Buffer) => {
          stderr += d.toString('utf8');
        });
        stream.on('exit', (n: number | null) => {
          code = n;
        });
        stream.on('close', () =>
          done(
            code === 0
              ? { ok: true, detail: 'ssh: exit 0' }
              : {
                  ok: false,
                  detail: `ssh: '${command}' exited ${code ?? 'by a signal'}${stderr.trim() ? `: ${stderr.trim().slice(0, 200)}` : ''}`,
                },
          ),
        );
      });
    });
    const pins = auth.pins;
    c.connect({
      host: target.host,
      port: target.port,
      username: auth.user,
      privateKey: auth.privateKey,
      readyTimeout: timeoutMs,
      ...(pins
        ? {
            hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
              const got = fingerprint(key);
              pins
                .get(name)
                .then(async (pinned) => {
                  if (!pinned) await pins.set(name, got);
                  else if (pinned !== got)
                    refused = `ssh: the host key of ${name} changed (pinned ${pinned}, got ${got})`;
                  verify(!refused);
                })
                .catch((err: unknown) => {
                  refused = `ssh: ${(err as Error).message}`;
                  verify(false);
                });
            },
          }
        : {}),
    });
  });
}

async function httpGet(url: string, expectStatus: number, timeoutMs: number): Promise<HealthResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await res.body?.cancel();
    return res.status === expectStatus
      ? { ok: true, detail: `http: ${res.status}` }
      : { ok: false, detail: `http: GET ${url} answered ${res.status}, not ${expectStatus}` };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, detail: `http: GET ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}` };
  }
}

/** A checker running `checks` in order; the first that fails decides the result. */
export function healthChecker(checks: HealthCheck[], deps: HealthDeps): HealthChecker {
  return {
    async check(host: HostRecord): Promise<HealthResult> {
      const passed: string[] = [];
      for (const check of checks) {
        const timeoutMs = (check.timeoutSeconds ?? DEFAULT_TIMEOUT_S) * 1000;
        let r: HealthResult;
        switch (check.type) {
          case 'ssh': {
            if (!deps.ssh) return { ok: false, detail: 'ssh check without an ssh section' };
            const ep = await deps.endpoints.endpoint(host, deps.ssh.port);
            if (!ep) return { ok: false, detail: `ssh: ${host.name} has no address yet` };
            r = await sshRun(host.name, ep, deps.ssh, check.command, timeoutMs);
            break;
          }
          case 'http': {
            const ep = await deps.endpoints.endpoint(host, check.port);
            if (!ep) return { ok: false, detail: `http: no way to reach port ${check.port} of ${host.name}` };
            const h = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
            r = await httpGet(`${check.scheme}://${h}:${ep.port}${check.path}`, check.expectStatus, timeoutMs);
            break;
          }
          case 'swarm-node-ready':
          case 'ecs-agent-connected': {
            if (!deps.orchestrator) return { ok: false, detail: `${check.type} needs an orchestrator` };
            r = await deps.orchestrator.ready(host);
            break;
          }
        }
        if (!r.ok) return r;
        passed.push(r.detail);
      }
      return { ok: true, detail: passed.join('; ') || 'no checks' };
    },
  };
}

/** The shortest interval the checks ask for (default 5 s). */
export function checkInterval(checks: HealthCheck[]): number {
  const given = checks.map((c) => c.intervalSeconds).filter((s): s is number => s !== undefined);
  return given.length ? Math.min(...given) : 5;
}

/** The `authorized_keys` line of a private key (OpenSSH or PEM), for a new host's user data. */
export function authorizedKey(privateKey: string, comment = 'stele'): string {
  const parsed = ssh2.utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new Error(`not a usable private key: ${key?.message ?? 'empty'}`);
  return `${key.type} ${key.getPublicSSH().toString('base64')} ${comment}`;
}
