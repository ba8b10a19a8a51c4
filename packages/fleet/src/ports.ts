// What the rollout engine needs from the outside world. Providers (vSphere, AWS, qemu),
// orchestrators (Swarm, ECS), health checks and state backends implement these; tests may fake
// them. Every adapter also passes the contract suites in ./contract/.
import type { FleetState, HostRecord, UserData } from './types.ts';

/** An OS image built in the format a provider boots, on local disk. */
export interface BuiltImage {
  /** Its identity (imageIdentity): what hosts and published copies are named by. */
  identity: string;
  /** The `stele build` format: kernel+initrd, iso-efi, iso-bios, raw-efi, raw-bios … */
  format: string;
  /** The files `stele build` wrote for that format (for kernel+initrd: kernel, initrd, cmdline). */
  files: string[];
}

/** An image where hosts boot from: a datastore file, an AMI, a local directory. */
export interface PublishedImage {
  identity: string;
  format: string;
  /** What the provider needs to boot from it and to find it again. */
  ref: Record<string, string | number>;
}

export interface PublishProgress {
  /** Bytes sent (or copied) so far, and in all. */
  done: number;
  total: number;
}

/** A host as the provider knows it. */
export interface ProvidedHost {
  /** The host name it was created under (its fleet tag says which fleet). */
  name: string;
  /** Identity of the image it was created from, as recorded on it; undefined when unknown. */
  image: string | undefined;
  /** What the provider needs to find it again; kept in the state. */
  ref: Record<string, string | number>;
  /** Where it answers, when already known. */
  address?: string;
}

/** What `create` is asked for. */
export interface CreateRequest {
  name: string;
  image: PublishedImage;
  userdata: UserData;
  /** Idempotency token, recorded in the state before the call (a retried or resumed create sends the same). */
  token: string;
}

export interface Provider {
  /** The `stele build` format this provider boots (kernel+initrd, iso-efi, raw-efi …). */
  readonly bootFormat: string;
  /** The published copy of image `identity`, if one exists already (checked, not assumed). */
  findPublished(identity: string): Promise<PublishedImage | undefined>;
  /**
   * Makes the built image available where hosts boot from. Idempotent: an earlier complete upload
   * of the same identity is found and returned (`reused`), never repeated; an interrupted one is
   * never taken for complete.
   */
  publish(image: BuiltImage, onProgress?: (p: PublishProgress) => void): Promise<PublishedImage & { reused: boolean }>;
  /** Every image this provider published for this fleet. */
  listPublished(): Promise<PublishedImage[]>;
  /** Deletes a published image; `in-use` (and nothing deleted) while any host still needs it; gone is success. */
  unpublish(image: PublishedImage): Promise<'removed' | 'in-use' | 'gone'>;
  /** Starts a host from a published image with `userdata` for its first boot. */
  create(req: CreateRequest): Promise<ProvidedHost>;
  /** The host named `name`, if it exists (a crash may have come between create and the state). */
  find(name: string): Promise<ProvidedHost | undefined>;
  /** Every host this provider holds for this fleet (found by the fleet's tags, not by the state). */
  list(): Promise<ProvidedHost[]>;
  /** Where the host answers (ssh, health checks); undefined while it has no address yet. */
  address(host: HostRecord): Promise<string | undefined>;
  /**
   * Where to reach the host's `guestPort` from here (a cloud host: its address and that port; a
   * local VM: a forwarded port on 127.0.0.1); undefined when there is no way (yet).
   */
  endpoint(host: HostRecord, guestPort: number): Promise<{ host: string; port: number } | undefined>;
  /** Stops and deletes the host and whatever was made only for it; succeeds when it is already gone. */
  destroy(host: HostRecord): Promise<void>;
  /** Lets go of connections and sessions. */
  close(): Promise<void>;
}

export interface HealthResult {
  ok: boolean;
  /** What failed, for the log and the rollout's reason. */
  detail: string;
}

export interface Orchestrator {
  /** User data a new host needs to join (e.g. manager addresses and join token). */
  joinUserdata(): Promise<UserData>;
  /** Whether the host has joined and takes work; never throws for "not yet". */
  ready(host: HostRecord): Promise<HealthResult>;
  /** Moves work off the host and waits (up to the fleet's drainSeconds) for it to leave. */
  drain(host: HostRecord): Promise<void>;
  /** Forgets the host (after it is destroyed); succeeds when it is not known. */
  remove(host: HostRecord): Promise<void>;
  /** Replaces the join secret, so one left in a host's user data can no longer join. */
  rotateJoinSecret(): Promise<void>;
  /** Lets go of connections. */
  close(): Promise<void>;
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

/** Who holds a fleet's lock, as shown to whoever is refused it. */
export interface LeaseHolder {
  user: string;
  host: string;
  pid: number;
  /** The command line (without secrets), e.g. `stele fleet rollout`. */
  command: string;
}

export interface Lease {
  /** Random, tells this taking of the lock from any other. */
  id: string;
  holder: LeaseHolder;
  since: string;
  /** It lapses at this time unless renewed. */
  expires: string;
}

/**
 * Where a fleet's state lives, as bytes with a version: `write` replaces them only if the version
 * is still the one read. The lock is a lease with an expiry that its holder renews while it works.
 */
export interface StateBackend {
  /** Where it is, for messages: a path, `s3://bucket/key`. */
  readonly location: string;
  /** The stored state and its version; undefined when none was ever written. */
  read(): Promise<{ text: string; version: string } | undefined>;
  /**
   * Replaces the state if its version is still `expected` (undefined: only if none exists) and
   * returns the new version; throws StateConflictError otherwise. Durable when it returns.
   */
  write(text: string, expected: string | undefined): Promise<string>;
  /** Takes the lock for `ttlMs`; throws LockHeldError naming the holder of a live lease. */
  acquire(holder: LeaseHolder, ttlMs: number): Promise<Lease>;
  /** Extends our lease; throws LeaseLostError when it is no longer ours (broken, or taken after it lapsed). */
  renew(lease: Lease, ttlMs: number): Promise<Lease>;
  /** Gives the lock up (nothing happens if it is no longer ours). */
  release(lease: Lease): Promise<void>;
  /** The lease as stored (live or lapsed), if any. */
  lease(): Promise<Lease | undefined>;
  /** Removes whatever lease there is (`stele fleet unlock --force`) and returns it. */
  breakLease(): Promise<Lease | undefined>;
}

/** The state of a fleet as a command holds it: change `state`, then `save()`. */
export interface StateJournal {
  readonly state: FleetState;
  /**
   * Writes the state as it is now. Saves are serialized (one writer per store), each conditional
   * on the version the previous one wrote; concurrent callers may share one write.
   */
  save(): Promise<void>;
}
