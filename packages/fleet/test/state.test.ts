// The state store over the file backend: versioned conditional writes, the lease (held, shown,
// renewed, lapsed, broken), one serialized writer, the format checked and migrated on load.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  emptyState,
  FileStateBackend,
  type LeaseHolder,
  LockHeldError,
  StateConflictError,
  StateError,
  StateStore,
} from '../src/index.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'stele-state-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const me = (command = 'stele fleet rollout'): LeaseHolder => ({
  user: 'tester',
  host: hostname(),
  pid: process.pid,
  command,
});

function store(dir = tmp()) {
  const path = join(dir, 'state', 'web.json');
  return { path, store: new StateStore(new FileStateBackend(path), 'web'), backend: new FileStateBackend(path) };
}

describe('file state backend', () => {
  it('writes only over the version it read; a missing state is written only if still missing', async () => {
    const { backend } = store();
    expect(await backend.read()).toBeUndefined();
    const v1 = await backend.write('{"a":1}', undefined);
    await expect(backend.write('{"a":2}', undefined)).rejects.toBeInstanceOf(StateConflictError);
    const v2 = await backend.write('{"a":2}', v1);
    expect(v2).not.toBe(v1);
    await expect(backend.write('{"a":3}', v1)).rejects.toBeInstanceOf(StateConflictError);
    expect((await backend.read())?.text).toBe('{"a":2}');
  });

  it('leaves no temp file behind and keeps the state private (0600)', async () => {
    const { backend, path } = store();
    await backend.write('{}', undefined);
    expect(readdirSync(join(path, '..')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(spawnSync('stat', ['-c', '%a', path]).stdout.toString().trim()).toBe('600');
  });
});

describe('state store', () => {
  it('a second command is refused at once, naming the holder; after release it may go', async () => {
    const { store: s } = store();
    const a = await s.open(me());
    const err = await s.open(me('stele fleet rollback')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockHeldError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `another command holds the lock of this fleet: tester@${hostname()} \\(pid ${process.pid}, 'stele fleet rollout'\\) since `,
      ),
    );
    await a.close();
    const b = await s.open(me('stele fleet rollback'));
    await b.close();
  });

  it('a lease whose holder died lapses at once; one past its expiry lapses too', async () => {
    const { store: s, path } = store();
    const dead = spawnSync('true').pid as number; // a pid that has exited
    await s.open({ ...me(), pid: dead }, { ttlMs: 3_600_000 }); // never closed: "killed"
    const next = await s.open(me());
    await next.close();
    // Another machine's holder can't be checked: only its expiry counts.
    const elsewhere = await s.open({ ...me(), host: 'other-host' }, { ttlMs: 1 });
    void elsewhere;
    await new Promise((r) => setTimeout(r, 20));
    const after = await s.open(me());
    await after.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('the lease is renewed while the command runs, so it outlives its ttl', async () => {
    const { store: s } = store();
    const a = await s.open({ ...me(), host: 'other-host' }, { ttlMs: 1_500 });
    await new Promise((r) => setTimeout(r, 2_500));
    await expect(s.open(me())).rejects.toBeInstanceOf(LockHeldError);
    await a.close();
  });

  it('after unlock --force, the old holder can no longer write', async () => {
    const { store: s, backend } = store();
    const a = await s.open(me(), { ttlMs: 1_500 });
    a.state.generation = 1;
    await a.save();
    const broken = await backend.breakLease();
    expect(broken?.holder.command).toBe('stele fleet rollout');
    const b = await s.open(me('stele fleet rollout'));
    b.state.generation = 2;
    await b.save();
    await new Promise((r) => setTimeout(r, 800)); // a renews once and finds the lock taken
    a.state.generation = 99;
    await expect(a.save()).rejects.toThrow(/lost the lock|changed by someone else/);
    expect((await s.read()).state.generation).toBe(2);
    await b.close();
    await a.close();
  });

  it('concurrent saves are serialized: none conflicts with another, the last state wins', async () => {
    const { store: s } = store();
    const a = await s.open(me());
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        a.state.hosts.push({ name: `web-1-${i}`, image: 'sha256:x', generation: 1, status: 'creating', createdAt: '' });
        return a.save();
      }),
    );
    await a.close();
    const { state } = await s.read();
    expect(state.hosts).toHaveLength(40);
    expect(state.lineage).toMatch(/^[0-9a-f-]{36}$/);
    expect(state.serial).toBeGreaterThanOrEqual(1);
    expect(state.serial).toBeLessThanOrEqual(40);
  });

  it('a state written by another writer meanwhile is not overwritten', async () => {
    const { store: s, backend } = store();
    const a = await s.open(me());
    await a.save();
    const now = await backend.read();
    await backend.write(`${now?.text.trim()} `, now?.version);
    await expect(a.save()).rejects.toThrow(/changed by someone else/);
    await a.close();
  });

  it('pins ssh host keys in the host records (they go with their host)', async () => {
    const { store: s } = store();
    const a = await s.open(me());
    a.state.hosts.push({ name: 'web-1-1', image: 'sha256:x', generation: 1, status: 'live', createdAt: '' });
    await a.pins.set('web-1-1', 'SHA256:abc');
    await a.pins.set('not-a-host', 'SHA256:zzz');
    expect(await a.pins.get('web-1-1')).toBe('SHA256:abc');
    await a.close();
    const { state } = await s.read();
    expect(state.hosts[0]?.hostKey).toBe('SHA256:abc');
    expect(JSON.stringify(state)).not.toContain('zzz');
  });
});

describe('state format', () => {
  const bad: [string, string, RegExp][] = [
    ['null', 'null', /not a Stele fleet state/],
    ['garbage', 'root:x:0:0:root:/root:/bin/bash\n', /it is not JSON/],
    [
      'hosts of the wrong type',
      '{"version":2,"fleet":"web","lineage":"l","serial":1,"generation":1,"hosts":{},"images":[],"history":[]}',
      /hosts: /,
    ],
    [
      'a generation that is not a number',
      '{"version":2,"fleet":"web","lineage":"l","serial":1,"generation":"x","hosts":[],"images":[],"history":[]}',
      /generation: /,
    ],
    [
      'a host without a name',
      '{"version":2,"fleet":"web","lineage":"l","serial":1,"generation":1,"hosts":[{"image":"x","generation":1,"status":"live","createdAt":""}],"images":[],"history":[]}',
      /hosts\.0\.name: /,
    ],
    ['a future version', '{"version":7}', /version 7, which this Stele does not know/],
  ];
  for (const [what, text, message] of bad) {
    it(`refuses ${what} with the field and a way out, never its contents`, async () => {
      const { store: s, path } = store();
      const { mkdirSync } = await import('node:fs');
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, text);
      const err = await s.read().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toMatch(/stele fleet status --repair/);
      expect((err as Error).message).not.toContain('root:x');
    });
  }

  it('migrates a version 1 state: hosts of an unfinished rollout that never passed their checks are not live', async () => {
    const { store: s, path } = store();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(path, '..'), { recursive: true });
    const v1 = {
      version: 1,
      fleet: 'web',
      generation: 2,
      hosts: [
        { name: 'web-1-1', image: 'sha256:old', generation: 1, status: 'live', createdAt: '' },
        { name: 'web-2-1', image: 'sha256:new', generation: 2, status: 'live', createdAt: '' },
      ],
      rollout: {
        generation: 2,
        target: 'sha256:new',
        from: ['sha256:old'],
        phase: 'stopped',
        steps: [
          { kind: 'create', hosts: ['web-2-1'], status: 'done' },
          { kind: 'await-healthy', hosts: ['web-2-1'], status: 'running' },
        ],
        startedAt: '',
      },
      history: [],
    };
    writeFileSync(path, JSON.stringify(v1));
    const { state } = await s.read();
    expect(state.version).toBe(2);
    expect(state.hosts.map((h) => `${h.name}:${h.status}`)).toEqual(['web-1-1:live', 'web-2-1:pending']);
    expect(state.images).toEqual([]);
    expect(state.lineage).toBeTruthy();
    expect(emptyState('web').version).toBe(2);
  });

  it('refuses a state of another fleet', async () => {
    const { path } = store();
    const other = new StateStore(new FileStateBackend(path), 'web');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, JSON.stringify({ ...emptyState('db'), lineage: 'l' }));
    await expect(other.read()).rejects.toThrow(/belongs to fleet 'db', not 'web'/);
    expect(readFileSync(path, 'utf8')).toContain('"db"');
  });
});
