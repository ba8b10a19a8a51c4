// What Stele records about a fleet: the hosts it created, the images it published for them, and
// the journal of its rollouts. The on-disk form is checked by state/schema.ts.

/**
 * Where a host is in its life:
 * - `creating`: recorded, the provider asked (or about to be asked) for it;
 * - `pending`: it exists but has not passed its health checks yet — it does not count;
 * - `live`: it passed its checks; it counts towards the fleet;
 * - `retiring`: being drained and destroyed (or its destroy failed: see `error`).
 */
export type HostStatus = 'creating' | 'pending' | 'live' | 'retiring';

export interface HostRecord {
  /** Unique for the life of the fleet, never reused: `<fleet>-<generation>-<n>`. */
  name: string;
  /** Identity of the OS image it runs (see imageIdentity). */
  image: string;
  /** The rollout that created it. */
  generation: number;
  status: HostStatus;
  /** What the provider needs to find it again (VM id, instance id, pid …). */
  provider?: Record<string, string | number>;
  /** Where it answers (ssh, health checks), once known. */
  address?: string;
  createdAt: string;
  /**
   * Idempotency token of its create request (from the state's lineage, the generation and the
   * name), recorded before the request: a provider that honours it never makes the host twice.
   */
  token?: string;
  /** Its ssh host key, pinned at first contact (OpenSSH SHA256 fingerprint). */
  hostKey?: string;
  /** Why the last attempt to retire it failed; it stays `retiring` and the next run retries. */
  error?: string;
}

/** An OS image made available where the provider boots hosts from. */
export interface PublishedRecord {
  identity: string;
  /** The build format that was published (kernel+initrd, iso-efi, raw-efi …). */
  format: string;
  /** What the provider needs to find it (datastore path, AMI id …). */
  ref: Record<string, string | number>;
  publishedAt: string;
}

export type Step =
  /** Start these hosts from the target image. */
  | { kind: 'create'; hosts: string[] }
  /** Wait until every check passes on each of these hosts (healthTimeoutSeconds). */
  | { kind: 'await-healthy'; hosts: string[] }
  /** Keep checking these hosts for `seconds` before old ones go. */
  | { kind: 'bake'; hosts: string[]; seconds: number }
  /** Drain these hosts out of the orchestrator, destroy them, remove them from it. */
  | { kind: 'retire'; hosts: string[] };

export type StepStatus = 'pending' | 'running' | 'done';

export type RolloutPhase = 'running' | 'done' | 'rolled-back' | 'stopped';

export interface RolloutRecord {
  generation: number;
  /** Image identity the rollout moves the fleet to. */
  target: string;
  /** Images the fleet ran before. */
  from: string[];
  phase: RolloutPhase;
  steps: (Step & { status: StepStatus })[];
  startedAt: string;
  endedAt?: string;
  /** Why it stopped or rolled back. */
  reason?: string;
  /** What went wrong without stopping it (a host that could not be retired …). */
  warnings?: string[];
}

export type RolloutSummary = Omit<RolloutRecord, 'steps'>;

export const STATE_VERSION = 2;

export interface FleetState {
  version: 2;
  fleet: string;
  /** Random, fixed when the state is first written: tells this state from a re-created one. */
  lineage: string;
  /** Counts the writes; a saved plan records it. */
  serial: number;
  /** Highest generation used so far (host names carry it). */
  generation: number;
  hosts: HostRecord[];
  /** Images published for this fleet, newest last. */
  images: PublishedRecord[];
  /** The latest rollout (running or finished); earlier ones in `history`, newest first. */
  rollout?: RolloutRecord;
  history: RolloutSummary[];
}

/** A state for a fleet that has never been written (its lineage is set by the first save). */
export function emptyState(fleet: string): FleetState {
  return { version: 2, fleet, lineage: '', serial: 0, generation: 0, hosts: [], images: [], history: [] };
}

/**
 * User data in LinuxKit's metadata format: each key a file (`content`) or a directory
 * (`entries`) below /run/config of the host (pkg/metadata writes them).
 */
export type UserDataEntry = { content: string; perm?: string } | { entries: UserData; perm?: string };
export type UserData = { [name: string]: UserDataEntry };

/** `parts` merged left to right; directories merge entry by entry, files are replaced. */
export function mergeUserData(...parts: UserData[]): UserData {
  const out: UserData = {};
  for (const part of parts) {
    for (const [k, v] of Object.entries(part)) {
      const had = out[k];
      out[k] =
        had && 'entries' in had && 'entries' in v
          ? { ...had, ...v, entries: mergeUserData(had.entries, v.entries) }
          : structuredClone(v);
    }
  }
  return out;
}
