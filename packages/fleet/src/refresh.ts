// The state compared with the world: which recorded hosts the provider no longer has (lost), and
// which hosts it has for this fleet that the state does not record (leaked). The plan replaces
// lost hosts and never reuses a name it sees; `stele fleet prune` removes leaked ones.
import { generationOf, type World } from './plan.ts';
import type { ProvidedHost } from './ports.ts';
import type { FleetState, HostRecord } from './types.ts';

export interface Refresh extends World {
  /** The lost hosts' records. */
  lostHosts: HostRecord[];
  /** The leaked hosts as the provider lists them. */
  leakedHosts: ProvidedHost[];
}

export function refresh(state: FleetState, listed: ProvidedHost[]): Refresh {
  const have = new Map(listed.map((h) => [h.name, h]));
  const recorded = new Set(state.hosts.map((h) => h.name));
  const running = state.rollout?.phase === 'running';
  // A `creating` host of a running rollout may not have been asked for yet: resume decides.
  const lostHosts = state.hosts.filter((h) => !have.has(h.name) && !(running && h.status === 'creating'));
  const leakedHosts = listed.filter((h) => !recorded.has(h.name));
  const generations = listed.map((h) => generationOf(state.fleet, h.name) ?? 0);
  return {
    lost: lostHosts.map((h) => h.name),
    leaked: leakedHosts.map((h) => h.name),
    maxGeneration: Math.max(0, ...generations),
    lostHosts,
    leakedHosts,
  };
}
