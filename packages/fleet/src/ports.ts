// What the rollout engine needs from the outside world. Providers (vSphere, AWS, qemu),
// orchestrators (Swarm, ECS) and health checks implement these; tests may fake them.
import type { FleetState, HostRecord } from './types.ts';

/** A host as the provider made it. */
export interface ProvidedHost {
  /** What the provider needs to find it again; kept in the state. */
  ref: Record<string, string | number>;
  /** Where it answers, when already known. */
  address?: string;
}

export interface Provider {
  /** Starts a host named `name` from the target image, with `userdata` for its first boot. */
  create(name: string, userdata: Record<string, unknown>): Promise<ProvidedHost>;
  /** The host named `name`, if it exists (a crash may have come between create and the state). */
  find(name: string): Promise<ProvidedHost | undefined>;
  /** Where the host answers (ssh, health checks); undefined while it has no address yet. */
  address(host: HostRecord): Promise<string | undefined>;
  /**
   * Where to reach the host's `guestPort` from here (a cloud host: its address and that port; a
   * local VM: a forwarded port on 127.0.0.1); undefined when there is no way (yet).
   */
  endpoint(host: HostRecord, guestPort: number): Promise<{ host: string; port: number } | undefined>;
  /** Stops and deletes the host; succeeds when it is already gone. */
  destroy(host: HostRecord): Promise<void>;
}

export interface Orchestrator {
  /** User data a new host needs to join (e.g. manager address and join token). */
  joinUserdata(): Promise<Record<string, unknown>>;
  /** Moves work off the host and waits (up to the fleet's drainSeconds) for it to leave. */
  drain(host: HostRecord): Promise<void>;
  /** Forgets the host (after it is destroyed); succeeds when it is not known. */
  remove(host: HostRecord): Promise<void>;
}

export interface HealthResult {
  ok: boolean;
  /** What failed, for the log and the rollout's reason. */
  detail: string;
}

export interface HealthChecker {
  /** Runs every configured check once against the host. */
  check(host: HostRecord): Promise<HealthResult>;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Where the state lives; `save` must replace it atomically. */
export interface StateStore {
  load(): Promise<FleetState>;
  save(state: FleetState): Promise<void>;
  /** Runs `fn` holding the state's lock (one command changes a fleet at a time). */
  locked<T>(fn: () => Promise<T>): Promise<T>;
}
