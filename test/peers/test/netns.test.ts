import { existsSync, readlinkSync, statSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { type Dockerd, processGone, startDockerd } from '../src/dockerd.ts';
import { type Lan, leftoverNamespaces, startLan } from '../src/netns.ts';
import { runCommand, spawnPeer, waitFor } from '../src/process.ts';

/** Node in a namespace: `nsenter --net=PATH node -e SCRIPT`. */
function nodeIn(path: string, script: string): [string, string[]] {
  return ['nsenter', [`--net=${path}`, '--', process.execPath, '-e', script]];
}

describe('LAN of network namespaces', () => {
  let lan: Lan | undefined;
  const engines: Dockerd[] = [];
  afterAll(async () => {
    for (const d of engines) await d.stop();
    await lan?.stop();
  });

  it('machines on it reach each other; the host network gains no address', async () => {
    lan = await startLan();
    const a = await lan.attach();
    const b = await lan.attach();
    expect([a.address, b.address]).toEqual(['10.213.0.2', '10.213.0.3']);
    expect(existsSync(a.path)).toBe(true);

    const server = spawnPeer(
      'echo server',
      ...nodeIn(
        a.path,
        `require('node:net').createServer((s) => s.end('hello from a')).listen(7000, '${a.address}', () => console.log('listening'))`,
      ),
    );
    try {
      await waitFor(async () => server.output().includes('listening'), {
        timeoutMs: 20_000,
        proc: server,
        what: 'echo server',
      });
      const client = `const s = require('node:net').connect(7000, '${a.address}'); s.on('data', (d) => process.stdout.write(d)); s.on('error', (e) => { console.error(e.message); process.exit(1); });`;
      const { stdout } = await runCommand(...nodeIn(b.path, client), { timeoutMs: 20_000 });
      expect(stdout).toBe('hello from a');
    } finally {
      await server.stop();
    }
    const { stdout: hostAddrs } = await runCommand('ip', ['-o', 'addr', 'show']);
    expect(hostAddrs).not.toContain('10.213.0.');
  });

  it('runs dockerd (and its containerd, managed or own) in a machine with its own hostname', async () => {
    if (!lan) throw new Error('no LAN');
    const machines = [await lan.attach(), await lan.attach()];
    engines.push(await startDockerd({ netns: machines[0]?.path, hostname: 'peer-a' }));
    engines.push(await startDockerd({ netns: machines[1]?.path, hostname: 'peer-b', containerd: 'own' }));
    for (const [i, d] of engines.entries()) {
      const machine = machines[i];
      if (!machine) throw new Error('no machine');
      expect((await d.docker.info()).Name).toBe(i === 0 ? 'peer-a' : 'peer-b');
      for (const pid of [d.process.pid, d.containerdPid]) {
        expect(statSync(`/proc/${pid}/ns/net`).ino, `pid ${pid}`).toBe(statSync(machine.path).ino);
        expect(readlinkSync(`/proc/${pid}/ns/uts`)).not.toBe(readlinkSync('/proc/self/ns/uts'));
      }
    }
  });

  it('stop() deletes every namespace of the LAN and the engines in it leave nothing running', async () => {
    if (!lan) throw new Error('no LAN');
    const pids = engines.flatMap((d) => [d.process.pid, d.containerdPid ?? 0]);
    for (const d of engines.splice(0)) await d.stop();
    for (const pid of pids) expect(processGone(pid), `pid ${pid}`).toBe(true);
    const prefix = lan.hub.replace(/-hub$/, '');
    const ours = () => leftoverNamespaces().filter((n) => n.startsWith(`${prefix}-`));
    expect(ours()).toHaveLength(5);
    await lan.stop();
    await lan.stop(); // a second stop is no error
    expect(ours()).toEqual([]);
    const { stdout } = await runCommand('ip', ['netns', 'list']);
    expect(stdout).not.toContain(prefix);
  });
});
