/**
 * `fleet.yml`: which OS image runs on how many hosts of which provider, and how a new image
 * is rolled out (blue-green) and checked. Documented in docs/fleet-yml.md.
 *
 * Secrets are never written inline: a secret field takes `{env: NAME}` or `{file: PATH}`.
 */
import { z } from 'zod';
import { describeValue, int, report, strict, URL_PASSWORD } from './common.ts';

// ---------------------------------------------------------------------------------------------
// Secrets

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const INLINE_SECRET_MESSAGE =
  'inline secrets are not allowed: reference it as {env: VARIABLE_NAME} or {file: PATH}';

export const envRefSchema = strict({
  env: z.string().regex(ENV_NAME, { error: 'must be an environment variable name such as VSPHERE_PASSWORD' }),
});
export const fileRefSchema = strict({ file: z.string().min(1) });

/** A secret: the name of an environment variable or the path of a file that holds it. */
export const secretRefSchema = z.union([envRefSchema, fileRefSchema], {
  error: (iss) =>
    typeof iss.input === 'string' || typeof iss.input === 'number'
      ? INLINE_SECRET_MESSAGE
      : `expected {env: VARIABLE_NAME} or {file: PATH}, got ${describeValue(iss.input)}`,
});
export type SecretRef = z.infer<typeof secretRefSchema>;

/** Keys whose string values look like secrets wherever they appear. */
export const SECRET_KEY = /(password|passwd|passphrase|secret|token|private[_-]?key|access[_-]?key|api[_-]?key)/i;

export const URL_PASSWORD_MESSAGE =
  'inline secrets are not allowed: take the password out of the URL and give it as {env: VARIABLE_NAME} or {file: PATH}';

// ---------------------------------------------------------------------------------------------
// Providers

const nonEmpty = z.string().min(1);
const positive = int.min(1);

export const vsphereProviderSchema = strict({
  type: z.literal('vsphere'),
  /** The vCenter or ESXi SDK endpoint, e.g. https://vcenter.example.com/sdk */
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://vcenter.example.com/sdk' }),
  username: z.union([nonEmpty, secretRefSchema]),
  password: secretRefSchema,
  /** Accept a self-signed certificate (lab set-ups only). */
  insecure: z.boolean().optional(),
  datacenter: nonEmpty,
  cluster: nonEmpty.optional(),
  resourcePool: nonEmpty.optional(),
  datastore: nonEmpty,
  network: nonEmpty,
  folder: nonEmpty.optional(),
  cpus: positive.default(2),
  memoryMiB: int.min(128).default(2048),
});

export const awsCredentialsSchema = z.union([
  strict({ profile: nonEmpty }),
  strict({ accessKeyId: secretRefSchema, secretAccessKey: secretRefSchema, sessionToken: secretRefSchema.optional() }),
]);

export const awsProviderSchema = strict({
  type: z.literal('aws'),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { error: 'must be an AWS region such as eu-west-1' }),
  instanceType: nonEmpty,
  /** Hosts are spread over these subnets in order. */
  subnets: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, { error: "must be a subnet id ('subnet-…')" })).min(1),
  securityGroups: z.array(z.string().regex(/^sg-[0-9a-f]+$/, { error: "must be a security group id ('sg-…')" })),
  /** Where disk images are uploaded for EBS snapshot import. */
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: 'must be an S3 bucket name' }),
  instanceProfile: nonEmpty.optional(),
  keyName: nonEmpty.optional(),
  /** Omitted: the default AWS credential chain (environment, profile, instance role). */
  credentials: awsCredentialsSchema.optional(),
  tags: z.record(z.string(), z.string()).optional(),
});

export const qemuProviderSchema = strict({
  type: z.literal('qemu'),
  cpus: positive.default(1),
  memoryMiB: int.min(128).default(1024),
  accel: z.enum(['auto', 'kvm', 'tcg']).default('auto'),
  /** Where disks, pid files and consoles live; relative to the fleet.yml. */
  dir: nonEmpty.optional(),
  /** Host ports forwarded to each VM's port 22: host i gets sshPortBase + i. */
  sshPortBase: int.min(1024).max(65000).default(2222),
  /** Extra host→guest forwards, e.g. "8080:80"; host i adds i to the host port. */
  forwards: z
    .array(z.string().regex(/^\d{1,5}:\d{1,5}$/, { error: 'must be HOSTPORT:GUESTPORT, e.g. "8080:80"' }))
    .optional(),
});

export const providerSchema = z.discriminatedUnion('type', [
  vsphereProviderSchema,
  awsProviderSchema,
  qemuProviderSchema,
]);

// ---------------------------------------------------------------------------------------------
// Rollout

/** A count, or a percentage of `hosts` as "NN%". */
const countOrPercent = z.union(
  [
    int.min(0),
    z.string().regex(/^(100|[1-9]?\d)%$/, {
      error: (iss) => `expected a percentage from 0% to 100%, got ${describeValue(iss.input)}`,
    }),
  ],
  { error: (iss) => `expected a count or a percentage such as "25%", got ${describeValue(iss.input)}` },
);

export const strategySchema = strict({
  type: z.literal('blue-green').default('blue-green'),
  /** New hosts started at once, above `hosts`. */
  maxSurge: countOrPercent.default(1),
  /** Hosts that must stay healthy while old ones are drained and removed. */
  minHealthy: countOrPercent.default('100%'),
  /** How long a new batch must stay healthy before old hosts are removed. */
  bakeSeconds: int.min(0).default(60),
  /** How long a new host may take to pass every health check. */
  healthTimeoutSeconds: int.min(1).default(600),
  /** auto: undo the rollout when a check fails; manual: stop and wait for `stele fleet rollback`. */
  rollback: z.enum(['auto', 'manual']).default('auto'),
});

const checkTiming = {
  intervalSeconds: int.min(1).optional(),
  timeoutSeconds: int.min(1).optional(),
};

export const healthCheckSchema = z.discriminatedUnion('type', [
  strict({ type: z.literal('ssh'), command: nonEmpty, ...checkTiming }),
  strict({
    type: z.literal('http'),
    scheme: z.enum(['http', 'https']).default('http'),
    port: int.min(1).max(65535),
    path: z.string().startsWith('/', { error: "must start with '/'" }).default('/'),
    expectStatus: int.min(100).max(599).default(200),
    ...checkTiming,
  }),
  strict({ type: z.literal('swarm-node-ready'), ...checkTiming }),
  strict({ type: z.literal('ecs-agent-connected'), ...checkTiming }),
]);

export const sshSchema = strict({
  user: nonEmpty.default('root'),
  port: int.min(1).max(65535).default(22),
  privateKey: secretRefSchema,
  /** A known_hosts file; omitted: host keys are pinned on first contact and kept in the state. */
  knownHosts: nonEmpty.optional(),
});

const tlsSchema = strict({ ca: secretRefSchema, cert: secretRefSchema, key: secretRefSchema });

export const orchestratorSchema = z.discriminatedUnion('type', [
  strict({
    type: z.literal('swarm'),
    /** Docker API of a manager: tcp://host:2376, unix:///var/run/docker.sock or ssh://user@host */
    endpoint: z.string().regex(/^(tcp|unix|ssh|https?):\/\/.+/, {
      error: 'must be a Docker endpoint such as tcp://manager:2376, ssh://user@host or unix:///var/run/docker.sock',
    }),
    tls: tlsSchema.optional(),
    /** Node labels set on each new host after it joins. */
    labels: z.record(z.string(), z.string()).optional(),
    /** How long to wait for tasks to leave a drained node before it is removed. */
    drainSeconds: int.min(0).default(120),
    /**
     * Rotate the worker join token after each rollout, so one left in a host's user data can't be
     * used again. Turn off only when several fleets (or other tools) join hosts to this swarm at
     * the same time: the token is the whole swarm's.
     */
    rotateJoinToken: z.boolean().default(true),
  }),
  strict({
    type: z.literal('ecs'),
    /** The cluster name or ARN. */
    cluster: nonEmpty,
    /** Defaults to the aws provider's region. */
    region: z.string().optional(),
    drainSeconds: int.min(0).default(120),
  }),
  strict({ type: z.literal('none') }),
]);

export const stateSchema = z.discriminatedUnion('backend', [
  strict({
    backend: z.literal('file'),
    /** Relative to the fleet.yml. */
    path: nonEmpty,
  }),
  strict({
    backend: z.literal('s3'),
    bucket: nonEmpty,
    key: nonEmpty,
    region: nonEmpty.optional(),
    /** For S3-compatible stores (MinIO); omitted: AWS. */
    endpoint: z.url().optional(),
    credentials: awsCredentialsSchema.optional(),
  }),
]);

// ---------------------------------------------------------------------------------------------
// The fleet

const FLEET_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Resolves a count-or-percentage against `hosts` (percentages round up). */
export function resolveCount(value: number | string, hosts: number): number {
  if (typeof value === 'number') return value;
  return Math.ceil((Number.parseInt(value, 10) / 100) * hosts);
}

export const fleetSchema = strict({
  name: z.string().regex(FLEET_NAME, {
    error: 'must be lowercase letters, digits and inner hyphens, at most 63 characters',
  }),
  /** Path of the OS manifest, relative to this fleet.yml. */
  image: z.string().regex(/^[^:]+\.ya?ml$/, { error: 'must be the path of an OS manifest (.yml or .yaml)' }),
  hosts: int.min(1).max(1000),
  provider: providerSchema,
  strategy: strategySchema.default({
    type: 'blue-green',
    maxSurge: 1,
    minHealthy: '100%',
    bakeSeconds: 60,
    healthTimeoutSeconds: 600,
    rollback: 'auto',
  }),
  health: z.array(healthCheckSchema).default([]),
  ssh: sshSchema.optional(),
  orchestrator: orchestratorSchema.default({ type: 'none' }),
  state: stateSchema.optional(),
}).superRefine((f, ctx) => {
  const { hosts, strategy } = f;
  const surge = resolveCount(strategy.maxSurge, hosts);
  const minHealthy = resolveCount(strategy.minHealthy, hosts);
  if (minHealthy > hosts) {
    report(ctx, ['strategy', 'minHealthy'], `minHealthy (${minHealthy}) is more than hosts (${hosts})`);
  }
  if (surge === 0 && minHealthy >= hosts) {
    report(
      ctx,
      ['strategy', 'maxSurge'],
      'maxSurge 0 with minHealthy equal to hosts leaves no room to replace a host: raise maxSurge or lower minHealthy',
    );
  }
  f.health.forEach((check, i) => {
    if (check.type === 'ssh' && !f.ssh) {
      report(ctx, ['health', i, 'type'], "an ssh check needs the top-level 'ssh' section (user and privateKey)");
    }
    if (check.type === 'swarm-node-ready' && f.orchestrator.type !== 'swarm') {
      report(ctx, ['health', i, 'type'], 'swarm-node-ready needs orchestrator type swarm');
    }
    if (check.type === 'ecs-agent-connected' && f.orchestrator.type !== 'ecs') {
      report(ctx, ['health', i, 'type'], 'ecs-agent-connected needs orchestrator type ecs');
    }
  });
  if (f.orchestrator.type === 'ecs' && f.provider.type !== 'aws' && !f.orchestrator.region) {
    report(ctx, ['orchestrator'], "an ecs orchestrator outside the aws provider needs 'region'");
  }
});

export type Fleet = z.infer<typeof fleetSchema>;
export type FleetInput = z.input<typeof fleetSchema>;
export type Provider = z.infer<typeof providerSchema>;
export type Strategy = z.infer<typeof strategySchema>;
export type HealthCheck = z.infer<typeof healthCheckSchema>;
export type Orchestrator = z.infer<typeof orchestratorSchema>;
export type StateBackend = z.infer<typeof stateSchema>;

/**
 * Inline secrets anywhere in a fleet document, including under keys the schema does not know:
 * a string value under a key that names a secret, and a URL with a password in it. Returns
 * [path, message] pairs.
 */
export function findInlineSecrets(
  data: unknown,
  path: Array<string | number> = [],
): Array<[Array<string | number>, string]> {
  const found: Array<[Array<string | number>, string]> = [];
  if (typeof data === 'string' && URL_PASSWORD.test(data)) {
    found.push([path, URL_PASSWORD_MESSAGE]);
  } else if (Array.isArray(data)) {
    data.forEach((v, i) => {
      found.push(...findInlineSecrets(v, [...path, i]));
    });
  } else if (data !== null && typeof data === 'object') {
    for (const [k, v] of Object.entries(data)) {
      if (SECRET_KEY.test(k) && (typeof v === 'string' || typeof v === 'number')) {
        found.push([[...path, k], INLINE_SECRET_MESSAGE]);
      } else {
        found.push(...findInlineSecrets(v, [...path, k]));
      }
    }
  }
  return found;
}
