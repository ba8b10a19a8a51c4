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
    // From the state alone (the provider is not asked), the hosts run the image.
    const same = await stele('fleet', 'plan', '--no-refresh', FLEET);
    expect(same.out).toMatch(/nothing to do/);
    // Asked, the provider has no such VMs: the recorded hosts are lost, cleaned up and replaced.
    const refreshed = await stele('fleet', 'plan', FLEET);
    expect(refreshed.out).toMatch(/clean up web-dev-1-1, web-dev-1-2 \(lost/);
    expect(refreshed.out).toMatch(/start web-dev-2-1, web-dev-2-2/);

    writeFileSync(join(dir, 'fleets/web/motd.txt'), 'version 2\n');
    const next = JSON.parse((await stele('fleet', 'plan', '--no-refresh', '--json', FLEET)).out);
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
    expect(damaged.err).toMatch(/the state .*web-dev\.json is unreadable: it is not JSON.*stele fleet status --repair/);
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
    expect(noKernel.err).toMatch(/building \.\.\/os\.yml \(kernel\+initrd\): .*no kernel/);
    writeFileSync(
      join(dir, 'fleets/web/dev/vs.yml'),
      'name: vs\nimage: ../os.yml\nhosts: 1\nprovider:\n  type: vsphere\n  url: https://vc.example/sdk\n' +
        '  username: u\n  password: { env: VS_PASSWORD }\n  datacenter: dc\n  datastore: ds\n  network: n\n',
    );
    const vs = await stele('fleet', 'rollout', 'fleets/web/dev/vs.yml');
    expect(vs.code).toBe(1);
    expect(vs.err).toMatch(/provider vsphere is not available in this Stele \(available: qemu\)/);
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

  it('plan --out saves a plan; rollout --plan refuses it, naming what changed, once the image moved', async () => {
    const saved = await stele('fleet', 'plan', '--out', 'plan.json', '--verify-key', 'nope.pub', FLEET);
    // --verify-key is taken by plan (as by rollout); an unreadable key is a clear error.
    expect(saved.code).toBe(1);
    expect(saved.err).toMatch(/nope\.pub/);
    expect(saved.err).not.toMatch(/\n\s+at /);
    const ok = await stele('fleet', 'plan', '--out', 'plan.json', FLEET);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/plan saved to plan\.json: apply it with 'stele fleet rollout --plan plan\.json/);
    expect(JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8'))).toMatchObject({
      kind: 'stele-fleet-plan',
      fleet: 'web-dev',
    });
    writeFileSync(join(dir, 'fleets/web/motd.txt'), 'version 9\n');
    const refused = await stele('fleet', 'rollout', '--plan', 'plan.json', FLEET);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(
      /the saved plan no longer applies: the image is now [0-9a-f]{12}, the plan rolls to [0-9a-f]{12}/,
    );
    writeFileSync(join(dir, 'fleets/web/motd.txt'), 'version 1\n');
    writeFileSync(join(dir, 'not-a-plan.json'), '{"steps": []}');
    const bad = await stele('fleet', 'rollout', '--plan', 'not-a-plan.json', FLEET);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/not-a-plan\.json is not a saved plan of this Stele/);
  });

  it('a held lock is shown by status and refuses a rollout naming its holder; unlock --force breaks it', async () => {
    mkdirSync(join(dir, 'fleets/web/dev/.stele/state'), { recursive: true });
    const lease = {
      id: 'x',
      holder: { user: 'alice', host: 'ci-runner-7', pid: 4242, command: 'stele fleet rollout' },
      since: '2026-12-01T10:00:00.000Z',
      expires: '2999-01-01T00:00:00.000Z',
    };
    writeFileSync(join(dir, `${STATE}.lock`), JSON.stringify(lease));
    const st = await stele('fleet', 'status', FLEET);
    expect(st.out).toMatch(/locked by alice@ci-runner-7 \(pid 4242, 'stele fleet rollout'\)/);
    const roll = await stele('fleet', 'rollout', FLEET);
    expect(roll.code).toBe(1);
    expect(roll.err).toMatch(/another command holds the lock of this fleet: alice@ci-runner-7 \(pid 4242/);
    expect(roll.out).not.toMatch(/resuming/);
    const no = await stele('fleet', 'unlock', FLEET);
    expect(no.code).toBe(1);
    expect(no.err).toMatch(/run again with --force/);
    const yes = await stele('fleet', 'unlock', '--force', FLEET);
    expect(yes.code, yes.err).toBe(0);
    expect(yes.out).toMatch(/broke the lock; it was locked by alice@ci-runner-7/);
  });

  it('--help lists plan, rollout, rollback and status', async () => {
    const r = await stele('fleet', '--help');
    expect(r.out).toMatch(/plan +show what a rollout/);
    for (const c of ['rollout', 'rollback', 'status', 'prune', 'unlock', 'publish'])
      expect(r.out).toMatch(new RegExp(`\\n  ${c} `));
    expect(readFileSync(join(dir, FLEET), 'utf8')).toContain('web-dev');
  });
});
