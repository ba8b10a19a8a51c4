// `stele fleet plan|status` as the user runs them: the target image's identity from the OS
// manifest, the state file beside the fleet.yml, the plan as text and JSON.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/main.ts';
import { fakeIo } from './io.ts';

let dir: string;
const FLEET = 'fleets/web/dev/fleet.yml';
const STATE = 'fleets/web/dev/.stele/state/web-dev.json';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'stele-cli-fleet-'));
  mkdirSync(join(dir, 'fleets/web/dev'), { recursive: true });
  // An OS image with no images (files only): its identity is its text and its files' sources.
  writeFileSync(join(dir, 'fleets/web/os.yml'), 'files:\n  - path: etc/motd\n    source: motd.txt\n');
  writeFileSync(join(dir, 'fleets/web/motd.txt'), 'version 1\n');
  writeFileSync(
    join(dir, FLEET),
    'name: web-dev\nimage: ../os.yml\nhosts: 2\nprovider:\n  type: qemu\nstrategy:\n  bakeSeconds: 30\n',
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function stele(...argv: string[]) {
  const io = { ...fakeIo({ STELE_CACHE: join(dir, 'store') }), cwd: dir };
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err() };
}

function writeState(image: string, extra: Record<string, unknown> = {}) {
  mkdirSync(join(dir, 'fleets/web/dev/.stele/state'), { recursive: true });
  const hosts = [1, 2].map((n) => ({ name: `web-dev-1-${n}`, image, generation: 1, status: 'live', createdAt: '' }));
  writeFileSync(
    join(dir, STATE),
    JSON.stringify({ version: 1, fleet: 'web-dev', generation: 1, hosts, history: [], ...extra }),
  );
}

describe('stele fleet', () => {
  it('plan: a new fleet starts every host', async () => {
    const r = await stele('fleet', 'plan', FLEET);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^web-dev: no hosts → [0-9a-f]{12} \(generation 1\); 2 new host\(s\), 0 retired\n/);
    expect(r.out).toContain('start web-dev-1-1, web-dev-1-2');
  });

  it('plan: nothing to do while the hosts run the image; a changed source file means a blue-green rollout', async () => {
    const first = JSON.parse((await stele('fleet', 'plan', '--json', FLEET)).out);
    writeState(first.to);
    const same = await stele('fleet', 'plan', FLEET);
    expect(same.out).toMatch(/nothing to do/);

    writeFileSync(join(dir, 'fleets/web/motd.txt'), 'version 2\n');
    const next = JSON.parse((await stele('fleet', 'plan', '--json', FLEET)).out);
    expect(next.to).not.toBe(first.to);
    expect(next.from).toEqual([first.to]);
    expect(next.steps.map((s: { kind: string }) => s.kind)).toEqual([
      'create',
      'await-healthy',
      'bake',
      'retire',
      'create',
      'await-healthy',
      'bake',
      'retire',
    ]);
    expect(next.retires).toEqual(['web-dev-1-1', 'web-dev-1-2']);
    expect(next.creates).toEqual(['web-dev-2-1', 'web-dev-2-2']);
    writeFileSync(join(dir, 'fleets/web/motd.txt'), 'version 1\n');
  });

  it('status lists the recorded hosts and the rollout', async () => {
    writeState('sha256:0123456789abcdef', {
      rollout: {
        generation: 2,
        target: 'sha256:fedcba9876543210',
        from: [],
        phase: 'running',
        steps: [
          { kind: 'create', hosts: ['web-dev-2-1'], status: 'done' },
          { kind: 'await-healthy', hosts: ['web-dev-2-1'], status: 'running' },
        ],
        startedAt: '',
      },
    });
    const r = await stele('fleet', 'status', FLEET);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('web-dev-1-1');
    expect(r.out).toMatch(/live +0123456789ab/);
    expect(r.out).toContain('rollout 2 to fedcba987654: running, 1/2 steps done');
    // A plan is refused while that rollout runs.
    const plan = await stele('fleet', 'plan', FLEET);
    expect(plan.code).toBe(1);
    expect(plan.err).toMatch(/web-dev: a rollout to fedcba987654 \(generation 2\) is in progress/);
    expect(JSON.parse((await stele('fleet', 'status', '--json', FLEET)).out).rollout.phase).toBe('running');
  });

  it('bad input: a fleet.yml error with its line, a damaged state, a missing image', async () => {
    writeFileSync(join(dir, 'bad.yml'), 'name: Web\nimage: ../os.yml\nhosts: 2\nprovider:\n  type: qemu\n');
    const bad = await stele('fleet', 'plan', 'bad.yml');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/bad\.yml:1:7: name: must be lowercase/);
    writeFileSync(join(dir, STATE), '{"version": 1, "fleet": "web-dev"');
    const damaged = await stele('fleet', 'status', FLEET);
    expect(damaged.code).toBe(1);
    expect(damaged.err).toMatch(/the state .*web-dev\.json is not JSON/);
    rmSync(join(dir, STATE));
    writeFileSync(
      join(dir, 'fleets/web/dev/other.yml'),
      'name: other\nimage: ../nope.yml\nhosts: 1\nprovider:\n  type: qemu\n',
    );
    const missing = await stele('fleet', 'plan', 'fleets/web/dev/other.yml');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/\.\.\/nope\.yml: .*nope\.yml: cannot read: no such file/);
    expect(missing.err).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('rollout and rollback: clear errors before anything is started', async () => {
    // This image has no kernel: nothing to boot.
    const noKernel = await stele('fleet', 'rollout', FLEET);
    expect(noKernel.code).toBe(1);
    expect(noKernel.err).toMatch(/building the image: the manifest has no kernel/);
    writeFileSync(
      join(dir, 'fleets/web/dev/vs.yml'),
      'name: vs\nimage: ../os.yml\nhosts: 1\nprovider:\n  type: vsphere\n  url: https://vc.example/sdk\n' +
        '  username: u\n  password: { env: VS_PASSWORD }\n  datacenter: dc\n  datastore: ds\n  network: n\n',
    );
    const vs = await stele('fleet', 'rollout', 'fleets/web/dev/vs.yml');
    expect(vs.code).toBe(1);
    expect(vs.err).toMatch(/provider vsphere is not available yet \(qemu is\)/);
    // A rollout to another image is unfinished: it is not silently replaced.
    writeState('sha256:0123456789abcdef', {
      rollout: {
        generation: 2,
        target: 'sha256:fedcba9876543210',
        from: [],
        phase: 'running',
        steps: [],
        startedAt: '',
      },
    });
    const other = await stele('fleet', 'rollout', FLEET);
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/a rollout to fedcba987654 is unfinished, but the image is now [0-9a-f]{12}/);
    rmSync(join(dir, STATE));
    const none = await stele('fleet', 'rollback', FLEET);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/web-dev: no rollout to roll back/);
  });

  it('--help lists plan, rollout, rollback and status', async () => {
    const r = await stele('fleet', '--help');
    expect(r.out).toMatch(/plan +show what a rollout/);
    for (const c of ['rollout', 'rollback', 'status']) expect(r.out).toMatch(new RegExp(`\\n  ${c} `));
    expect(readFileSync(join(dir, FLEET), 'utf8')).toContain('web-dev');
  });
});
