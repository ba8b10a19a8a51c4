import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { detectKind, formatError, parseFleet, parseOsManifest, resolveCount } from '../src/index.ts';

const fixture = (p: string) => readFileSync(new URL(`../../../fleets/swarm-worker/${p}`, import.meta.url), 'utf8');
const PROD = fixture('prod/fleet.yml');

// biome-ignore lint/suspicious/noExplicitAny: the tests edit free-form YAML data
type Data = Record<string, any>;

/** The prod fixture with `edit` applied to its data. */
function variant(edit: (f: Data) => void): string {
  const data = parse(PROD) as Data;
  edit(data);
  return stringify(data);
}

function errorsOf(text: string): string[] {
  const r = parseFleet(text, 'fleet.yml');
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

describe('example fleet fixtures', () => {
  it('the swarm-worker OS manifest and prod fleet are valid and detected by name', () => {
    const os = parseOsManifest(fixture('os.yml'), 'os.yml');
    expect(os.ok ? [] : os.errors.map(formatError)).toEqual([]);
    const fleet = parseFleet(PROD, 'fleets/swarm-worker/prod/fleet.yml');
    expect(fleet.ok ? [] : fleet.errors.map(formatError)).toEqual([]);
    expect(detectKind('fleets/swarm-worker/prod/fleet.yml', PROD)).toBe('fleet');
    expect(detectKind('prod.yml', PROD)).toBe('fleet');
  });

  it('fills defaults', () => {
    const text = 'name: lab\nimage: os.yml\nhosts: 2\nprovider: {type: qemu}\n';
    const r = parseFleet(text, 'fleet.yml');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.strategy).toEqual({
      type: 'blue-green',
      maxSurge: 1,
      minHealthy: '100%',
      bakeSeconds: 60,
      healthTimeoutSeconds: 600,
      rollback: 'auto',
    });
    expect(r.value.orchestrator).toEqual({ type: 'none' });
    expect(r.value.provider).toMatchObject({
      type: 'qemu',
      cpus: 1,
      memoryMiB: 1024,
      accel: 'auto',
      sshPortBase: 2222,
    });
    expect(r.value.health).toEqual([]);
  });
});

describe('fleet.yml schema', () => {
  it('rejects an inline password with a message that says how to reference it', () => {
    const errs = errorsOf(
      variant((f) => {
        f.provider.password = 'hunter2';
      }),
    );
    expect(errs).toEqual([expect.stringMatching(/^provider\.password: inline secrets are not allowed.*\{env: /)]);
  });

  it('flags secret-looking strings even under unknown keys', () => {
    const errs = errorsOf(
      variant((f) => {
        f.orchestrator.apiToken = 's3cr3t';
      }),
    );
    expect(errs).toContain("orchestrator.apiToken: unknown key 'apiToken'");
    expect(errs.some((e) => /^orchestrator\.apiToken: inline secrets/.test(e))).toBe(true);
  });

  it('accepts secrets by env name or file path, rejects bad env names', () => {
    expect(
      errorsOf(
        variant((f) => {
          f.provider.password = { file: '/run/secrets/vsphere' };
        }),
      ),
    ).toEqual([]);
    const errs = errorsOf(
      variant((f) => {
        f.provider.password = { env: 'not a name' };
      }),
    );
    expect(errs).toEqual(['provider.password.env: must be an environment variable name such as VSPHERE_PASSWORD']);
    expect(
      errorsOf(
        variant((f) => {
          f.provider.password = ['x'];
        }),
      ),
    ).toEqual(['provider.password: expected {env: VARIABLE_NAME} or {file: PATH}, got a list']);
  });

  it('names the allowed provider types', () => {
    expect(
      errorsOf(
        variant((f) => {
          f.provider = { type: 'azure' };
        }),
      ),
    ).toEqual(['provider.type: must be one of "vsphere", "aws", "qemu"; got a string ("azure")']);
    expect(
      errorsOf(
        variant((f) => {
          f.provider = { url: 'x' };
        }),
      ),
    ).toEqual(['provider.type: missing required key \'type\' (one of "vsphere", "aws", "qemu")']);
  });

  it('checks each provider its own fields', () => {
    const aws = {
      type: 'aws',
      region: 'eu-west-1',
      instanceType: 't3.medium',
      subnets: ['subnet-0abc'],
      securityGroups: ['sg-0abc'],
      bucket: 'stele-images',
    };
    expect(
      errorsOf(
        variant((f) => {
          f.provider = aws;
        }),
      ),
    ).toEqual([]);
    expect(
      errorsOf(
        variant((f) => {
          f.provider = { ...aws, region: 'Ireland', subnets: [] };
        }),
      ),
    ).toEqual(['provider.region: must be an AWS region such as eu-west-1', 'provider.subnets: needs at least 1 entry']);
    expect(
      errorsOf(
        variant((f) => {
          f.provider = { ...aws, datastore: 'x' };
        }),
      ),
    ).toEqual(["provider.datastore: unknown key 'datastore'"]);
  });

  it('checks strategy numbers against the host count', () => {
    expect(
      errorsOf(
        variant((f) => {
          f.strategy.minHealthy = 4;
        }),
      ),
    ).toEqual(['strategy.minHealthy: minHealthy (4) is more than hosts (3)']);
    expect(
      errorsOf(
        variant((f) => {
          f.strategy.maxSurge = 0;
        }),
      ),
    ).toEqual([expect.stringMatching(/^strategy\.maxSurge: maxSurge 0 with minHealthy equal to hosts/)]);
    expect(
      errorsOf(
        variant((f) => {
          f.strategy.maxSurge = 0;
          f.strategy.minHealthy = '66%';
        }),
      ),
    ).toEqual([]);
    expect(
      errorsOf(
        variant((f) => {
          f.strategy.rollback = 'sometimes';
        }),
      ),
    ).toEqual(['strategy.rollback: must be one of "auto", "manual"; got a string ("sometimes")']);
    expect(
      errorsOf(
        variant((f) => {
          f.strategy.maxSurge = '150%';
        }),
      ),
    ).toEqual(['strategy.maxSurge: expected a percentage from 0% to 100%, got a string ("150%")']);
    expect(
      errorsOf(
        variant((f) => {
          f.strategy.maxSurge = true;
        }),
      ),
    ).toEqual(['strategy.maxSurge: expected a count or a percentage such as "25%", got a boolean (true)']);
  });

  it('ties health checks to the orchestrator and ssh settings', () => {
    const errs = errorsOf(
      variant((f) => {
        delete f.ssh;
        f.orchestrator = { type: 'none' };
        f.health.push({ type: 'ecs-agent-connected' });
      }),
    );
    expect(errs).toEqual([
      "health.0.type: an ssh check needs the top-level 'ssh' section (user and privateKey)",
      'health.1.type: swarm-node-ready needs orchestrator type swarm',
      'health.2.type: ecs-agent-connected needs orchestrator type ecs',
    ]);
  });

  it('requires name, image, hosts and provider, each reported', () => {
    const r = parseFleet('strategy: {rollback: manual}\n', 'f.yml');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.path).sort()).toEqual(['hosts', 'image', 'name', 'provider']);
    for (const e of r.errors) expect([e.line, e.col]).toEqual([1, 1]);
  });

  it('validates the state backends', () => {
    expect(
      errorsOf(
        variant((f) => {
          f.state = { backend: 's3', bucket: 'b', key: 'fleets/prod.json', region: 'eu-west-1' };
        }),
      ),
    ).toEqual([]);
    expect(
      errorsOf(
        variant((f) => {
          f.state = { backend: 'consul' };
        }),
      ),
    ).toEqual(['state.backend: must be one of "file", "s3"; got a string ("consul")']);
  });

  it('resolves percentages against the host count, rounding up', () => {
    expect(resolveCount('50%', 3)).toBe(2);
    expect(resolveCount('100%', 7)).toBe(7);
    expect(resolveCount(2, 10)).toBe(2);
  });
});
