// Health checks against a real HTTP server and an ssh server on loopback (ssh2's server stands
// in for a guest's sshd here; the fleet's end-to-end test uses the real one).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostRecord } from '@stele/fleet';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkInterval, type HostKeyPins, healthChecker } from '../src/index.ts';

const { Server: SshServer, utils } = ssh2;
const host: HostRecord = { name: 'web-1-1', image: 'x', generation: 1, status: 'live', createdAt: '' };
const clientKey = utils.generateKeyPairSync('ed25519');
const otherKey = utils.generateKeyPairSync('ed25519');
let http: Server;
let httpPort: number;
let ssh: InstanceType<typeof SshServer>;
let sshPort: number;
let closedPort: number;
const commands: string[] = [];

beforeAll(async () => {
  http = createServer((req, res) => {
    res.statusCode = req.url === '/healthz' ? 200 : 503;
    res.end('x');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpPort = (http.address() as AddressInfo).port;
  const gone = createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  closedPort = (gone.address() as AddressInfo).port;
  await new Promise((r) => gone.close(r));

  const hostKey = utils.generateKeyPairSync('ed25519');
  const allowed = utils.parseKey(clientKey.public);
  ssh = new SshServer({ hostKeys: [hostKey.private] }, (client) => {
    client.on('authentication', (ctx) => {
      const key = !(allowed instanceof Error) && ctx.method === 'publickey' ? ctx.key : undefined;
      if (key && !(allowed instanceof Error) && key.data.equals(allowed.getPublicSSH())) ctx.accept();
      else ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        accept().once('exec', (acc, _rej, info) => {
          commands.push(info.command);
          const stream = acc();
          if (info.command === 'true') stream.exit(0);
          else {
            stream.stderr.write('not active\n');
            stream.exit(1);
          }
          stream.end();
        });
      });
    });
    client.on('error', () => {});
  });
  await new Promise<void>((r) => ssh.listen(0, '127.0.0.1', r));
  sshPort = (ssh.address() as AddressInfo).port;
});
afterAll(() => {
  http?.close();
  ssh?.close();
});

const endpoints = {
  async endpoint(_h: HostRecord, guestPort: number) {
    if (guestPort === 22) return { host: '127.0.0.1', port: sshPort };
    if (guestPort === 80) return { host: '127.0.0.1', port: httpPort };
    if (guestPort === 81) return { host: '127.0.0.1', port: closedPort }; // nothing listens
    return undefined;
  },
};
const sshAuth = { user: 'root', port: 22, privateKey: clientKey.private };

describe('health checks', () => {
  it('http: the expected status passes; another status, a closed port, an unforwarded port fail with why', async () => {
    const ok = await healthChecker([{ type: 'http', scheme: 'http', port: 80, path: '/healthz', expectStatus: 200 }], {
      endpoints,
    }).check(host);
    expect(ok).toEqual({ ok: true, detail: 'http: 200' });
    const bad = await healthChecker([{ type: 'http', scheme: 'http', port: 80, path: '/', expectStatus: 200 }], {
      endpoints,
    }).check(host);
    expect(bad.ok).toBe(false);
    expect(bad.detail).toMatch(/answered 503, not 200/);
    const closed = await healthChecker([{ type: 'http', scheme: 'http', port: 81, path: '/', expectStatus: 200 }], {
      endpoints,
    }).check(host);
    expect(closed.detail).toMatch(/ECONNREFUSED/);
    const none = await healthChecker([{ type: 'http', scheme: 'http', port: 8080, path: '/', expectStatus: 200 }], {
      endpoints,
    }).check(host);
    expect(none.detail).toMatch(/no way to reach port 8080 of web-1-1/);
  });

  it('ssh: exit 0 passes; a failing command reports its code and stderr; a wrong key is refused', async () => {
    expect(await healthChecker([{ type: 'ssh', command: 'true' }], { endpoints, ssh: sshAuth }).check(host)).toEqual({
      ok: true,
      detail: 'ssh: exit 0',
    });
    const failing = await healthChecker([{ type: 'ssh', command: 'docker info' }], { endpoints, ssh: sshAuth }).check(
      host,
    );
    expect(failing).toEqual({ ok: false, detail: "ssh: 'docker info' exited 1: not active" });
    const wrongKey = await healthChecker([{ type: 'ssh', command: 'true' }], {
      endpoints,
      ssh: { ...sshAuth, privateKey: otherKey.private },
    }).check(host);
    expect(wrongKey.ok).toBe(false);
    expect(wrongKey.detail).toMatch(/^ssh: All configured authentication methods failed/);
    expect(commands).toEqual(['true', 'docker info']);
  });

  it('ssh host keys are pinned at first contact; a different key later fails the check', async () => {
    const kept = new Map<string, string>();
    const pins: HostKeyPins = {
      get: async (h) => kept.get(h),
      set: async (h, f) => {
        kept.set(h, f);
      },
    };
    const check = () =>
      healthChecker([{ type: 'ssh', command: 'true' }], { endpoints, ssh: { ...sshAuth, pins } }).check(host);
    expect((await check()).ok).toBe(true);
    const pinned = await pins.get('web-1-1');
    expect(pinned).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect((await check()).ok).toBe(true); // same key: still fine
    await pins.set('web-1-1', 'SHA256:somethingelse');
    const changed = await check();
    expect(changed).toEqual({
      ok: false,
      detail: `ssh: the host key of web-1-1 changed (pinned SHA256:somethingelse, got ${pinned})`,
    });
  });

  it('all checks must pass, the first failure is reported; orchestrator checks ask the orchestrator', async () => {
    let asked = 0;
    const orchestrator = {
      async ready() {
        asked++;
        return { ok: false, detail: 'node web-1-1: status down' };
      },
    };
    const r = await healthChecker(
      [
        { type: 'http', scheme: 'http', port: 80, path: '/healthz', expectStatus: 200 },
        { type: 'swarm-node-ready' },
        { type: 'ssh', command: 'true' },
      ],
      { endpoints, ssh: sshAuth, orchestrator },
    ).check(host);
    expect(r).toEqual({ ok: false, detail: 'node web-1-1: status down' });
    expect(asked).toBe(1);
    expect(await healthChecker([], { endpoints }).check(host)).toEqual({ ok: true, detail: 'no checks' });
    expect(
      checkInterval([
        { type: 'swarm-node-ready', intervalSeconds: 7 },
        { type: 'swarm-node-ready', intervalSeconds: 3 },
      ]),
    ).toBe(3);
    expect(checkInterval([])).toBe(5);
  });
});
