// The Docker Swarm orchestrator of fleet rollouts: new hosts join the swarm with the worker token
// and the managers' advertised addresses (user data), old hosts are drained and then removed from
// it, `ready` (the `swarm-node-ready` health check) asks the manager whether a host's node is
// ready, and after a rollout the worker token is rotated.
//
// Nodes are found by hostname: the rollout engine gives every host its name as hostname.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  classify,
  type ErrorKind,
  FleetError,
  type HealthResult,
  type HostRecord,
  type Orchestrator,
  type UserData,
} from '@stele/fleet';
import { DockerEndpointError, dockerClientOptions } from '@stele/pkg/docker-endpoint';
import type Dockerode from 'dockerode';

export interface SwarmOrchestratorOptions {
  /** Docker API of a manager: unix:///path, tcp://host:port, http(s)://host:port. */
  endpoint: string;
  /** PEM contents (the caller resolved the secret refs); makes tcp:// speak https. */
  tls?: { ca: string; cert: string; key: string };
  /** Node labels set on each new host once its node is ready. */
  labels?: Record<string, string>;
  /** How long drain() waits for tasks to leave a node. */
  drainSeconds: number;
  /** How often to poll while draining (default 2000 ms; tests may lower it). */
  pollMs?: number;
}

/**
 * What went wrong, in the fleet's three kinds: `user` for what only configuration can mend (the
 * endpoint, its TLS material, an engine that is not a manager), `retryable` when nothing answered,
 * otherwise as the fleet classifies the engine's answer (429 and 502–504 retryable, else fatal).
 */
export class SwarmError extends FleetError {
  override name = 'SwarmError';
}

/** Node's codes for a server certificate that is not trusted, or a TLS handshake refused. */
const TLS_TRUST = /CERT|SELF_SIGNED|LEAF_SIGNATURE|HOSTNAME_MISMATCH|^ERR_SSL_|^ERR_TLS_/;

/** Errors that mean nothing answered at the endpoint. */
const UNREACHABLE = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'EACCES',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/** Task states that are over: the task's container no longer runs (or never will). */
const FINISHED = new Set(['complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned']);

const REQUEST_TIMEOUT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;

/** A node as the Engine API returns it (the fields used here). */
interface NodeInfo {
  ID: string;
  Version?: { Index?: number };
  CreatedAt?: string;
  Spec?: NodeSpec;
  Description?: { Hostname?: string };
  Status?: { State?: string; Message?: string };
}
interface NodeSpec {
  Name?: string;
  Labels?: Record<string, string>;
  Role?: string;
  Availability?: string;
}
interface TaskInfo {
  ID?: string;
  NodeID?: string;
  DesiredState?: string;
  Status?: { State?: string };
}

/** dockerode options for a Docker endpoint (pkg's one rule for it); its refusals are the user's. */
function clientOptions(endpoint: string, tls: SwarmOrchestratorOptions['tls']): Dockerode.DockerOptions {
  try {
    return dockerClientOptions(endpoint, {
      ...(tls ? { tls } : {}),
      timeout: REQUEST_TIMEOUT_MS,
      connectionTimeout: CONNECT_TIMEOUT_MS,
    });
  } catch (err) {
    if (err instanceof DockerEndpointError) throw new SwarmError(err.message, 'user');
    throw err;
  }
}

/** The engine refused an update made from a version someone else has updated since. */
function outOfSequence(err: unknown): boolean {
  return /update out of sequence/i.test(String((err as Error).message ?? ''));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The node a host is: the ready one among those with its hostname, else the newest. */
function pick(nodes: NodeInfo[], hostname: string): NodeInfo | undefined {
  const created = (n: NodeInfo) => Date.parse(n.CreatedAt ?? '') || 0;
  return nodes
    .filter((n) => n.Description?.Hostname === hostname)
    .sort(
      (a, b) => Number(b.Status?.State === 'ready') - Number(a.Status?.State === 'ready') || created(b) - created(a),
    )[0];
}

function describe(host: string, node: NodeInfo): string {
  return `node ${host}: status ${node.Status?.State ?? 'unknown'}, availability ${node.Spec?.Availability ?? 'unknown'}`;
}

export class SwarmOrchestrator implements Orchestrator {
  readonly endpoint: string;
  private readonly labels: Record<string, string> | undefined;
  private readonly drainMs: number;
  private readonly pollMs: number;
  private readonly options: Dockerode.DockerOptions;
  private readonly agent: HttpAgent | HttpsAgent;
  private client: Promise<Dockerode> | undefined;
  private closed = false;

  constructor(opts: SwarmOrchestratorOptions) {
    this.endpoint = opts.endpoint;
    if (!Number.isFinite(opts.drainSeconds) || opts.drainSeconds < 0) {
      throw new SwarmError(`drainSeconds must be a number of seconds ≥ 0, got ${opts.drainSeconds}`, 'user');
    }
    this.drainMs = opts.drainSeconds * 1000;
    this.pollMs = Math.max(10, opts.pollMs ?? 2000);
    this.labels = opts.labels && Object.keys(opts.labels).length ? { ...opts.labels } : undefined;
    const options = clientOptions(opts.endpoint, opts.tls);
    // An agent of our own, so that close() can let go of its kept-alive connections.
    this.agent =
      options.protocol === 'https' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    this.options = { ...options, agent: this.agent } as Dockerode.DockerOptions;
  }

  /** dockerode, loaded on first use: commands that never reach a swarm start faster. */
  private docker(): Promise<Dockerode> {
    if (this.closed) return Promise.reject(new SwarmError(`the orchestrator of ${this.endpoint} is closed`, 'fatal'));
    this.client ??= import('dockerode').then((m) => new m.default(this.options));
    return this.client;
  }

  /** Runs one API call; any failure becomes a SwarmError naming the endpoint. */
  private async call<T>(what: string, fn: (docker: Dockerode) => Promise<T>): Promise<T> {
    const docker = await this.docker();
    try {
      return await fn(docker);
    } catch (err) {
      throw this.error(what, err);
    }
  }

  /** Like call, but undefined when the object is gone (404). */
  private async callUnless404<T>(what: string, fn: (docker: Dockerode) => Promise<T>): Promise<T | undefined> {
    const docker = await this.docker();
    try {
      return await fn(docker);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw this.error(what, err);
    }
  }

  private error(what: string, err: unknown): SwarmError {
    if (err instanceof SwarmError) return err;
    const e = err as NodeJS.ErrnoException & { statusCode?: number; json?: unknown };
    const at = this.endpoint;
    if (e.code && UNREACHABLE.has(e.code)) {
      const cause = e.code === 'ECONNRESET' ? 'ECONNRESET: connection reset or request timed out' : e.code;
      const kind = e.code === 'EACCES' ? 'user' : 'retryable';
      return new SwarmError(`cannot reach the Docker endpoint ${at} (${cause}) to ${what}`, kind, { cause: err });
    }
    if (e.statusCode !== undefined) {
      // The engine's own words: {message} in JSON, else the plain-text body (dockerode hands
      // that over as a Buffer), else dockerode's "(HTTP code N) reason - …" without its prefix.
      const body = e.json;
      const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : undefined;
      const message = (
        body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string'
          ? (body as { message: string }).message
          : text?.trim()
            ? text
            : e.message.replace(/^\(HTTP code \d+\) [^-]*- /, '')
      ).trim();
      if (e.statusCode === 503 && /not (a swarm manager|part of a swarm)/i.test(message)) {
        return new SwarmError(`the Docker Engine at ${at} is not a Swarm manager: ${message}`, 'user', { cause: err });
      }
      // An https endpoint spoken to in plain http (tls missing in the fleet.yml) says so with a 400.
      const kind: ErrorKind = /HTTP request to an HTTPS server/i.test(message) ? 'user' : classify(err);
      return new SwarmError(`${at}: could not ${what} (HTTP ${e.statusCode}): ${message}`, kind, { cause: err });
    }
    const detail = e.code ? `${e.code}: ${e.message}` : (e.message ?? String(err));
    const kind: ErrorKind = e.code && TLS_TRUST.test(e.code) ? 'user' : classify(err);
    return new SwarmError(`${at}: could not ${what}: ${detail}`, kind, { cause: err });
  }

  private async findNode(host: HostRecord): Promise<NodeInfo | undefined> {
    const nodes = (await this.call('list the swarm nodes', (d) => d.listNodes())) as NodeInfo[];
    return pick(nodes, host.name);
  }

  private async inspectNode(id: string): Promise<NodeInfo | undefined> {
    return (await this.callUnless404(`inspect node ${id}`, (d) => d.getNode(id).inspect())) as NodeInfo | undefined;
  }

  /**
   * Writes the node's spec as `change` makes it from the current one (at its current version);
   * retried when someone else updated the node meanwhile. Undefined when the node is gone.
   */
  private async updateNode(
    node: NodeInfo,
    what: string,
    change: (spec: NodeSpec) => NodeSpec | undefined,
  ): Promise<NodeInfo | undefined> {
    let current: NodeInfo | undefined = node;
    for (let attempt = 1; ; attempt++) {
      if (!current) return undefined;
      const spec = change({ ...(current.Spec ?? {}) });
      if (!spec) return current; // nothing to change
      const version = current.Version?.Index;
      const docker = await this.docker();
      try {
        // dockerode sends `opts` as both query and body unless split into _query and _body.
        await docker.getNode(current.ID).update({ _query: { version }, _body: spec });
        return current;
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return undefined;
        if (!outOfSequence(err) || attempt >= 5) throw this.error(what, err);
      }
      current = await this.inspectNode(current.ID);
    }
  }

  async joinUserdata(): Promise<UserData> {
    const info = (await this.call('read docker info', (d) => d.info())) as {
      Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean; RemoteManagers?: { Addr?: string }[] | null };
    };
    const swarm = info.Swarm ?? {};
    const state = swarm.LocalNodeState || 'unknown';
    if (state !== 'active') {
      throw new SwarmError(
        `the Docker Engine at ${this.endpoint} is not a Swarm manager (LocalNodeState: ${state})`,
        'user',
      );
    }
    if (!swarm.ControlAvailable) {
      throw new SwarmError(
        `the Docker Engine at ${this.endpoint} is not a Swarm manager (LocalNodeState: active, but it is a worker): ` +
          'point the endpoint at a manager',
        'user',
      );
    }
    // The managers' advertised addresses: what a new host must dial.
    const managers = (swarm.RemoteManagers ?? []).map((m) => m.Addr).filter((a): a is string => !!a);
    if (!managers.length) throw new SwarmError(`the swarm of ${this.endpoint} lists no manager addresses`, 'fatal');
    const inspect = (await this.call('inspect the swarm', (d) => d.swarmInspect())) as {
      JoinTokens?: { Worker?: string };
    };
    const token = inspect.JoinTokens?.Worker;
    if (!token) throw new SwarmError(`the swarm of ${this.endpoint} has no worker join token`, 'fatal');
    return { swarm: { entries: { manager: { content: managers.join('\n') }, token: { content: token } } } };
  }

  /**
   * Rotates the worker join token, so that one left in a host's user data can no longer join
   * (the manager token is left alone: hosts join as workers). The swarm's spec is written back
   * as read, at its version; retried when someone else updated the swarm meanwhile.
   */
  async rotateJoinSecret(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const swarm = (await this.call('inspect the swarm', (d) => d.swarmInspect())) as {
        Version?: { Index?: number };
        Spec?: Record<string, unknown>;
      };
      const docker = await this.docker();
      try {
        await docker.swarmUpdate({
          _query: { version: swarm.Version?.Index, rotateWorkerToken: true },
          _body: swarm.Spec ?? {},
        });
        return;
      } catch (err) {
        if (!outOfSequence(err) || attempt >= 5) throw this.error('rotate the worker join token', err);
      }
    }
  }

  async drain(host: HostRecord): Promise<void> {
    const deadline = Date.now() + this.drainMs;
    const found = await this.findNode(host);
    if (!found) return;
    const node = await this.updateNode(found, `drain node ${host.name}`, (spec) =>
      spec.Availability === 'drain' ? undefined : { ...spec, Availability: 'drain' },
    );
    if (!node) return;
    for (;;) {
      // The node is re-read each round: gone means done; down means its tasks cannot be seen to
      // stop, so only what the manager wants of them counts.
      const current = await this.inspectNode(node.ID);
      if (!current) return;
      const down = current.Status?.State !== 'ready';
      const tasks = (await this.call(`list the tasks of node ${host.name}`, (d) =>
        d.listTasks({ filters: { node: [node.ID] } }),
      )) as TaskInfo[];
      const staying = tasks.filter(
        (t) =>
          t.NodeID === node.ID &&
          (t.DesiredState === 'running' || (!down && !FINISHED.has(t.Status?.State ?? 'complete'))),
      );
      if (!staying.length) return;
      const left = deadline - Date.now();
      if (left <= 0) return; // the engine destroys the host anyway
      await sleep(Math.min(this.pollMs, left));
    }
  }

  async remove(host: HostRecord): Promise<void> {
    // The host is destroyed: every node that carries its hostname is a leftover of it.
    const nodes = (await this.call('list the swarm nodes', (d) => d.listNodes())) as NodeInfo[];
    for (const node of nodes.filter((n) => n.Description?.Hostname === host.name)) {
      await this.callUnless404(`remove node ${host.name} (${node.ID})`, (d) =>
        d.getNode(node.ID).remove({ force: true }),
      );
    }
  }

  /**
   * One health check: the manager lists a node whose hostname is host.name as status ready and
   * availability active; after it first does, apply `labels` to it. Failures to reach the manager
   * are a failed check (the rollout keeps checking until its health timeout), not an exception.
   */
  async ready(host: HostRecord): Promise<HealthResult> {
    try {
      const node = await this.findNode(host);
      if (!node) return { ok: false, detail: `no node with hostname ${host.name}` };
      const detail = describe(host.name, node);
      const ok = node.Status?.State === 'ready' && node.Spec?.Availability === 'active';
      if (ok && this.labels) {
        const wanted = this.labels;
        const updated = await this.updateNode(node, `set the labels of node ${host.name}`, (spec) => {
          const labels = spec.Labels ?? {};
          if (Object.entries(wanted).every(([k, v]) => labels[k] === v)) return undefined;
          return { ...spec, Labels: { ...labels, ...wanted } };
        });
        if (!updated) return { ok: false, detail: `no node with hostname ${host.name} (it left the swarm)` };
      }
      return { ok, detail };
    } catch (err) {
      if (err instanceof SwarmError) return { ok: false, detail: err.message };
      throw err;
    }
  }

  /** Lets go of the connections to the manager; a second call does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.agent.destroy();
  }
}
