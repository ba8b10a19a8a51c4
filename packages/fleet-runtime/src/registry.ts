// Which adapter serves which `provider.type`, `orchestrator.type` and `state.backend` of a
// fleet.yml: one line per adapter package. Types missing here are refused with the list of those
// that are available, before anything is built or touched.
import { join, resolve } from 'node:path';
import { FileStateBackend, type OrchestratorPlugin, type ProviderPlugin, type StateBackendPlugin } from '@stele/fleet';
import type { Fleet } from '@stele/manifest';
import { plugin as swarm } from '@stele/orchestrator-swarm';
import { plugin as qemu } from '@stele/provider-qemu';

export type ProviderConfig = Fleet['provider'];
export type OrchestratorConfig = Fleet['orchestrator'];
export type StateConfig = NonNullable<Fleet['state']>;

export interface Registry {
  providers: { [K in ProviderConfig['type']]?: ProviderPlugin<Extract<ProviderConfig, { type: K }>> };
  orchestrators: {
    [K in Exclude<OrchestratorConfig['type'], 'none'>]?: OrchestratorPlugin<Extract<OrchestratorConfig, { type: K }>>;
  };
  /** `file` also serves a fleet.yml without `state` (its config is then undefined). */
  stateBackends: {
    [K in StateConfig['backend']]?: StateBackendPlugin<
      K extends 'file' ? Extract<StateConfig, { backend: K }> | undefined : Extract<StateConfig, { backend: K }>
    >;
  };
}

/** The state as a JSON file: `state.path`, or `.stele/state/<fleet>.json` beside the fleet.yml. */
export const fileState: StateBackendPlugin<Extract<StateConfig, { backend: 'file' }> | undefined> = {
  backend: 'file',
  async create(config, ctx) {
    const dir = resolve(ctx.fleetFile, '..');
    return new FileStateBackend(config ? resolve(dir, config.path) : join(ctx.workDir, 'state', `${ctx.fleet}.json`));
  },
};

export const registry: Registry = {
  providers: { qemu },
  orchestrators: { swarm },
  stateBackends: { file: fileState },
};

/** The names a registry table serves, for "not available" messages. */
export function available(table: object): string {
  return Object.keys(table).join(', ') || 'none';
}
