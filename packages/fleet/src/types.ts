// What Stele records about a fleet: the hosts it created and the journal of its rollouts.

/** Where a host is in its life. `live` hosts count towards the fleet. */
export type HostStatus = 'creating' | 'live' | 'retiring' | 'removed';

export interface HostRecord {
  /** Unique in the fleet: `<fleet>-<generation>-<n>`; providers name the VM after it. */
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
}

export interface FleetState {
  version: 1;
  fleet: string;
  /** Highest generation used so far (host names carry it). */
  generation: number;
  hosts: HostRecord[];
  /** The latest rollout (running or finished); earlier ones in `history`, newest first. */
  rollout?: RolloutRecord;
  history: Omit<RolloutRecord, 'steps'>[];
}

export function emptyState(fleet: string): FleetState {
  return { version: 1, fleet, generation: 0, hosts: [], history: [] };
}
