// A fleet's state over any StateBackend: loads and checks it, and for a command that changes the
// fleet holds the lock as a lease (renewed while the command runs) and writes every change
// conditionally, one write at a time.
import { randomUUID } from 'node:crypto';
import { classify, messageOf, retrying } from '../errors.ts';
import type { Clock, Lease, LeaseHolder, StateBackend, StateJournal } from '../ports.ts';
import { realClock } from '../ports.ts';
import { emptyState, type FleetState } from '../types.ts';
import { parseState, StateFormatError } from './schema.ts';

/** The state cannot be read or written; the message says what to do. */
export class StateError extends Error {
  override name = 'StateError';
}

/** Someone else wrote the state since we read it. */
export class StateConflictError extends StateError {
  override name = 'StateConflictError';
}

/** Another command holds the fleet's lock. */
export class LockHeldError extends StateError {
  override name = 'LockHeldError';
  constructor(
    message: string,
    readonly lease: Lease | undefined,
  ) {
    super(message);
  }
}

/** Our lease was broken or taken over after it lapsed. */
export class LeaseLostError extends StateError {
  override name = 'LeaseLostError';
}

/** "pid 123 of alice on build-7, running 'stele fleet rollout', since …" */
export function describeLease(lease: Lease): string {
  const h = lease.holder;
  return `${h.user}@${h.host} (pid ${h.pid}, '${h.command}') since ${lease.since}, lease until ${lease.expires}`;
}

export interface OpenOptions {
  /** How long the lease lasts unless renewed (default 60 s); renewed every third of it. */
  ttlMs?: number;
  clock?: Clock;
}

export class StateStore {
  constructor(
    readonly backend: StateBackend,
    readonly fleet: string,
  ) {}

  get location(): string {
    return this.backend.location;
  }

  private repairHint(): string {
    return (
      `run 'stele fleet status --repair' to set it aside and rebuild the state from the hosts the provider holds, ` +
      `or restore ${this.location} from a backup`
    );
  }

  /** The state and its version (undefined: never written), checked and migrated. */
  async read(): Promise<{ state: FleetState; version: string | undefined }> {
    let got: { text: string; version: string } | undefined;
    try {
      got = await this.backend.read();
    } catch (err) {
      if (err instanceof StateError) throw err;
      throw new StateError(`cannot read the state ${this.location}: ${messageOf(err)}`, { cause: err });
    }
    if (!got) return { state: emptyState(this.fleet), version: undefined };
    let state: FleetState;
    try {
      state = parseState(got.text);
    } catch (err) {
      if (!(err instanceof StateFormatError)) throw err;
      throw new StateError(`the state ${this.location} is unreadable: ${err.message}; ${this.repairHint()}`);
    }
    if (state.fleet !== this.fleet) {
      throw new StateError(
        `the state ${this.location} belongs to fleet '${state.fleet}', not '${this.fleet}': check state in the fleet.yml`,
      );
    }
    return { state, version: got.version };
  }

  /** Takes the lock and reads the state, for a command that changes the fleet. */
  async open(holder: LeaseHolder, opts: OpenOptions = {}): Promise<StateSession> {
    const ttlMs = opts.ttlMs ?? 60_000;
    const lease = await this.backend.acquire(holder, ttlMs);
    try {
      const { state, version } = await this.read();
      return new StateSession(this.backend, state, version, lease, ttlMs, opts.clock ?? realClock);
    } catch (err) {
      await this.backend.release(lease).catch(() => {});
      throw err;
    }
  }

  /** Takes the lock without reading the state (to repair an unreadable one). */
  async openBlank(holder: LeaseHolder, state: FleetState, opts: OpenOptions = {}): Promise<StateSession> {
    const ttlMs = opts.ttlMs ?? 60_000;
    const lease = await this.backend.acquire(holder, ttlMs);
    const current = await this.backend.read().catch(() => undefined);
    return new StateSession(this.backend, state, current?.version, lease, ttlMs, opts.clock ?? realClock);
  }
}

/** The state as one command holds it, under its lease. */
export class StateSession implements StateJournal {
  private lease: Lease;
  private lost: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly backend: StateBackend,
    readonly state: FleetState,
    private version: string | undefined,
    lease: Lease,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {
    this.lease = lease;
    this.timer = setInterval(() => void this.renew(), Math.max(1_000, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  get location(): string {
    return this.backend.location;
  }

  private async renew(): Promise<void> {
    if (this.closed || this.lost) return;
    try {
      this.lease = await this.backend.renew(this.lease, this.ttlMs);
    } catch (err) {
      if (err instanceof LeaseLostError) this.lost = err.message;
      // Anything else (a network blip): the next tick tries again; a write checks the version anyway.
    }
  }

  /** Writes the state as it is now (see StateJournal.save). */
  save(): Promise<void> {
    if (this.next) return this.next;
    const before = this.running ?? Promise.resolve();
    const p: Promise<void> = before
      .catch(() => {})
      .then(() => {
        this.next = undefined;
        this.running = p;
        return this.write();
      })
      .finally(() => {
        if (this.running === p) this.running = undefined;
      });
    this.next = p;
    return p;
  }

  private async write(): Promise<void> {
    if (this.closed) throw new StateError(`the state ${this.location} was closed`);
    if (this.lost) throw new StateError(`lost the lock of ${this.location}: ${this.lost}; changes stopped`);
    if (!this.state.lineage) this.state.lineage = randomUUID();
    this.state.serial += 1;
    const text = `${JSON.stringify(this.state, null, 2)}\n`;
    const expected = this.version;
    let attempts = 0;
    try {
      this.version = await retrying(
        () => {
          attempts++;
          return this.backend.write(text, expected);
        },
        this.clock,
        { classify: (e) => (e instanceof StateError ? 'fatal' : classify(e)) },
      );
    } catch (err) {
      if (err instanceof StateConflictError && attempts > 1) {
        // An earlier attempt may have landed without our hearing of it.
        const now = await this.backend.read().catch(() => undefined);
        if (now?.text === text) {
          this.version = now.version;
          return;
        }
      }
      if (err instanceof StateConflictError) {
        throw new StateConflictError(
          `the state ${this.location} was changed by someone else while this command held its lock ` +
            `(was the lock broken with 'stele fleet unlock --force'?): stopped without writing`,
        );
      }
      if (err instanceof StateError) throw err;
      throw new StateError(`cannot write the state ${this.location}: ${messageOf(err)}`, { cause: err });
    }
  }

  /** ssh host keys pinned in the state, by host name (they go with their host). */
  readonly pins = {
    get: async (host: string): Promise<string | undefined> => this.state.hosts.find((h) => h.name === host)?.hostKey,
    set: async (host: string, fingerprint: string): Promise<void> => {
      const h = this.state.hosts.find((x) => x.name === host);
      if (!h) return; // not a host of this fleet (any more): nothing to pin it to
      h.hostKey = fingerprint;
      await this.save();
    },
  };

  /** Waits for pending writes, stops renewing and gives the lock up. */
  async close(): Promise<void> {
    if (this.closed) return;
    await (this.next ?? this.running)?.catch(() => {});
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.backend.release(this.lease).catch(() => {});
  }
}
