// The qemu provider beyond the contract, against real qemu (TCG): user data reaches the guest on
// its config drive and nowhere a local user could read it; creates are idempotent per token;
// hosts of another fleet are neither found nor touched; an interrupted copy of an image never
// counts as published; the plugin builds the provider from fleet.yml's section.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuiltImage, HostRecord, PluginContext, PublishedImage } from '@stele/fleet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plugin, QemuProvider, QemuProviderError } from '../src/index.ts';
import { GUEST_UP, guestImage, portBase } from './fixture.ts';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const C = `sha256:${'c'.repeat(64)}`;

let work: string;
let image: (identity: string) => BuiltImage;
const made: { p: QemuProvider; name: string }[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'stele-qemu-provider-'));
  image = await guestImage(work);
});

afterAll(async () => {
  for (const { p, name } of made) await p.destroy(record(name)).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

function provider(fleet = 'web', more: Partial<ConstructorParameters<typeof QemuProvider>[0]> = {}) {
  return new QemuProvider({
    fleet,
    dir: join(work, 'qemu'),
    memoryMiB: 256,
    accel: 'tcg',
    sshPortBase: portBase(10),
    ...more,
  });
}

/** `secret` as it would appear in plain text or inside any base64 text (at each of the 3 alignments). */
function leaks(secret: string): string[] {
  const b64 = [0, 1, 2].map((k) => {
    const all = Buffer.from('\0'.repeat(k) + secret).toString('base64');
    return all.slice(4, -4);
  });
  return [secret, ...b64];
}

const record = (name: string): HostRecord => ({ name, image: A, generation: 1, status: 'live', createdAt: '' });

async function consoleShows(p: QemuProvider, name: string, text: string, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = await p.console(name);
    if (log.includes(text) || Date.now() > deadline) return log;
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('QemuProvider', () => {
  it('hands user data over on a 0600 config drive that the guest reads, never on a command line or the console', async () => {
    const p = provider();
    const published = await p.publish(image(A));
    const secret = `SWMTKN-1-${createHash('sha256').update(String(Math.random())).digest('hex')}`;
    const userdata = {
      hostname: { content: 'web-1-1' },
      swarm: { entries: { token: { content: secret, perm: '0600' } } },
    };
    const host = await p.create({ name: 'web-1-1', image: published, userdata, token: 't-1' });
    made.push({ p, name: 'web-1-1' });

    const vmDir = join(work, 'qemu', 'hosts', 'web-1-1');
    expect(statSync(vmDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(vmDir, 'config.iso')).mode & 0o777).toBe(0o600);
    const log = await consoleShows(p, 'web-1-1', GUEST_UP);
    const sha = createHash('sha256').update(JSON.stringify(userdata)).digest('hex');
    expect(log, 'the guest found the drive by its label and read user-data').toContain(`CIDATA /dev/sr0 ${sha}`);
    const cmdline = readFileSync(`/proc/${host.ref.pid}/cmdline`, 'utf8');
    expect(cmdline).toContain('stele-web-1-1');
    for (const leak of leaks(secret)) {
      expect(log).not.toContain(leak);
      expect(cmdline).not.toContain(leak);
      for (const f of readdirSync(vmDir).filter((f) => f !== 'config.iso')) {
        expect(readFileSync(join(vmDir, f), 'utf8'), f).not.toContain(leak);
      }
    }
  });

  it('a create with the same token returns the running host; another token is refused', async () => {
    const p = provider();
    const published = (await p.findPublished(A)) as PublishedImage;
    const first = await p.find('web-1-1');
    expect(first?.image).toBe(A);
    const again = await provider().create({ name: 'web-1-1', image: published, userdata: {}, token: 't-1' });
    expect(again).toEqual(first);
    await expect(p.create({ name: 'web-1-1', image: published, userdata: {}, token: 't-2' })).rejects.toThrow(
      /web-1-1 is already running, made by another request/,
    );
    expect((await p.find('web-1-1'))?.ref.pid).toBe(first?.ref.pid);
  });

  it("another fleet in the same directory neither sees nor touches this fleet's hosts", async () => {
    const other = provider('db');
    expect(await other.find('web-1-1')).toBeUndefined();
    expect(await other.list()).toEqual([]);
    await other.destroy(record('web-1-1'));
    expect(await provider().find('web-1-1')).toBeDefined();
    // It shares the slots: its own host gets the next free port.
    const published = (await other.findPublished(A)) as PublishedImage;
    const db = await other.create({ name: 'db-1-1', image: published, userdata: {}, token: 'd-1' });
    made.push({ p: other, name: 'db-1-1' });
    expect(db.address).not.toBe((await provider().find('web-1-1'))?.address);
    // An image one of its hosts boots is in use for every provider of the directory.
    expect(await provider().unpublish(published)).toBe('in-use');
    await other.destroy(record('db-1-1'));
    await provider().destroy(record('web-1-1'));
    expect(await provider().list()).toEqual([]);
  });

  it('a qemu that cannot start is a clear error and leaves no VM directory', async () => {
    const p = provider('web', { memoryMiB: 999_999_999 });
    const published = (await p.findPublished(A)) as PublishedImage;
    await expect(p.create({ name: 'web-2-1', image: published, userdata: {}, token: 'x' })).rejects.toThrow(
      /qemu did not start web-2-1: .*/,
    );
    expect(await p.find('web-2-1')).toBeUndefined();
    expect(readdirSync(join(work, 'qemu', 'hosts'))).not.toContain('web-2-1');
    await expect(p.find('Bad_Name')).rejects.toThrow(QemuProviderError);
    await expect(
      p.create({ name: 'web-2-2', image: { ...published, identity: C }, userdata: {}, token: 'y' }),
    ).rejects.toThrow(/is not published/);
  });
});

describe('published images', () => {
  it('an interrupted copy is never taken for complete, and the next publish redoes it', async () => {
    const p = provider('web', { dir: join(work, 'images-test') });
    const images = join(work, 'images-test', 'images');
    const progress: number[] = [];
    const a = await p.publish(image(A), (x) => progress.push(x.total - x.done));
    expect(a.reused).toBe(false);
    expect(progress.at(-1)).toBe(0);

    // A copy cut short: its kernel is shorter than its marker says.
    truncateSync(join(images, 'a'.repeat(64), 'kernel'), 1000);
    expect(await p.findPublished(A)).toBeUndefined();
    expect(await p.listPublished()).toEqual([]);
    expect((await p.publish(image(A))).reused).toBe(false);
    expect(await p.findPublished(A)).toEqual({ identity: A, format: 'kernel+initrd', ref: a.ref });

    // A copy without its marker (written last), and a dead publisher's temp dir.
    mkdirSync(join(images, 'b'.repeat(64)));
    const leftover = join(images, `.publish-${'b'.repeat(64)}-4194305-abcdef`);
    mkdirSync(leftover);
    expect(await p.findPublished(B)).toBeUndefined();
    expect((await p.publish(image(B))).reused).toBe(false);
    expect((await p.listPublished()).map((i) => i.identity).sort()).toEqual([A, B]);
    expect(readdirSync(images).sort()).toEqual(['a'.repeat(64), 'b'.repeat(64)]);

    await expect(p.publish({ ...image(C), format: 'iso-efi' })).rejects.toMatchObject({ kind: 'user' });
    await expect(p.publish(image('latest'))).rejects.toThrow(/not sha256:<64 hex>/);
  });
});

describe('plugin', () => {
  const ctx = (workDir: string): PluginContext => ({
    fleet: 'web',
    fleetFile: join(work, 'fleets', 'web', 'fleet.yml'),
    workDir,
    secret: async () => '',
    env: {},
    log: () => undefined,
  });
  const config = { type: 'qemu', cpus: 1, memoryMiB: 256, accel: 'tcg', sshPortBase: 2222 } as const;

  it('boots kernel+initrd, keeps its files in <workDir>/qemu, or in `dir` relative to the fleet.yml', async () => {
    expect(plugin.type).toBe('qemu');
    expect(plugin.bootFormat(config)).toBe('kernel+initrd');
    const byDefault = await plugin.create(config, ctx(join(work, 'fleets', 'web', '.stele')));
    expect(byDefault.bootFormat).toBe('kernel+initrd');
    expect((await byDefault.publish(image(A))).ref.dir).toBe(
      join(work, 'fleets', 'web', '.stele', 'qemu', 'images', 'a'.repeat(64)),
    );
    const inDir = await plugin.create({ ...config, dir: '../vms' }, ctx(join(work, 'elsewhere')));
    expect((await inDir.publish(image(A))).ref.dir).toBe(join(work, 'fleets', 'vms', 'images', 'a'.repeat(64)));
  });
});
