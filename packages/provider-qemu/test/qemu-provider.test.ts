// The qemu provider against real qemu: VMs that outlive the provider object, found again by
// name, each with its own forwarded port and user data, destroyed for good.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostRecord } from '@stele/fleet';
import { debianKernel, makeBusyboxInitramfs } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QemuProvider, QemuProviderError } from '../src/index.ts';

let work: string;
let initrd: string;
const made: string[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'stele-qemu-provider-'));
  // The guest prints its user data (from the kernel command line) and stays up.
  initrd = await makeBusyboxInitramfs({
    dir: work,
    init: [
      'mount -t proc proc /proc',
      'for w in $(cat /proc/cmdline); do case $w in stele.userdata=*) echo "USERDATA $' +
        '{w#stele.userdata=}";; esac; done',
      'echo STELE-GUEST-UP',
      'while true; do sleep 60; done',
    ].join('\n'),
  });
});

afterAll(async () => {
  const p = provider();
  for (const name of made) await p.destroy(record(name)).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

function provider() {
  return new QemuProvider({
    dir: join(work, 'vms'),
    kernel: debianKernel(),
    initrd,
    cmdline: 'console=ttyS0 panic=-1',
    memoryMiB: 256,
    accel: 'tcg',
    sshPortBase: 40000 + (process.pid % 1000) * 10,
  });
}

const record = (name: string): HostRecord => ({ name, image: 'x', generation: 1, status: 'live', createdAt: '' });

async function consoleShows(p: QemuProvider, name: string, text: string, timeoutMs = 90_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = await p.console(name);
    if (log.includes(text) || Date.now() > deadline) return log;
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('QemuProvider', () => {
  it('starts VMs that keep running, each on its own port with its user data; finds and destroys them', async () => {
    const p = provider();
    const a = await p.create('web-1-1', { hostname: { content: 'web-1-1' } });
    made.push('web-1-1');
    const b = await p.create('web-1-2', { hostname: { content: 'web-1-2' } });
    made.push('web-1-2');
    expect(a.address).not.toBe(b.address);
    expect(a.ref.pid).not.toBe(b.ref.pid);

    const log = await consoleShows(p, 'web-1-2', 'STELE-GUEST-UP');
    const sent = /USERDATA (\S+)/.exec(log)?.[1];
    expect(JSON.parse(Buffer.from(sent ?? '', 'base64').toString())).toEqual({ hostname: { content: 'web-1-2' } });

    // Another provider object (another stele process) finds them by name.
    const again = provider();
    expect(await again.find('web-1-1')).toEqual(a);
    expect(await again.address(record('web-1-2'))).toBe(b.address);
    expect(await again.find('web-1-9')).toBeUndefined();
    expect(await again.endpoint(record('web-1-2'), 22)).toEqual({ host: '127.0.0.1', port: Number(b.ref.port) });
    expect(await again.endpoint(record('web-1-2'), 8080)).toBeUndefined(); // not forwarded
    await expect(again.create('web-1-1', {})).rejects.toThrow(QemuProviderError);

    await again.destroy(record('web-1-1'));
    expect(await again.find('web-1-1')).toBeUndefined();
    // Gone (or a zombie waiting for init to reap it: no command line any more).
    expect(existsSync(`/proc/${a.ref.pid}/cmdline`) ? readFileSync(`/proc/${a.ref.pid}/cmdline`, 'utf8') : '').toBe('');
    await again.destroy(record('web-1-1')); // already gone: fine
    // The freed slot (and port) is used again.
    const c = await again.create('web-1-3', {});
    made.push('web-1-3');
    expect(c.address).toBe(a.address);
    await again.destroy(record('web-1-3'));
    await again.destroy(record('web-1-2'));
    expect(await again.find('web-1-2')).toBeUndefined();
  });

  it('a qemu that cannot start is a clear error and leaves no VM directory', async () => {
    const p = new QemuProvider({
      dir: join(work, 'vms'),
      kernel: debianKernel(),
      initrd,
      cmdline: 'console=ttyS0',
      memoryMiB: 999_999_999,
      accel: 'tcg',
    });
    await expect(p.create('web-2-1', {})).rejects.toThrow(/qemu did not start web-2-1: .*/);
    expect(await p.find('web-2-1')).toBeUndefined();
    await expect(p.create('Bad_Name', {})).rejects.toThrow(/bad host name/);
  });
});
