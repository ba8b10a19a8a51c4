// How an adapter package plugs into the fleet runtime: it exports a plugin that builds its port
// from its own section of fleet.yml. The runtime's registry (packages/fleet-runtime) maps
// `provider.type`, `orchestrator.type` and `state.backend` to these — one line per adapter.
import type { SecretRef } from '@stele/manifest';
import type { Orchestrator, Provider, StateBackend } from './ports.ts';

/** What an adapter is given to build itself. */
export interface PluginContext {
  /** The fleet's name (hosts and published images are tagged with it). */
  fleet: string;
  /** Absolute path of the fleet.yml; relative paths in it are relative to its directory. */
  fleetFile: string;
  /** Where local working files of this fleet live (`.stele/` beside the fleet.yml). */
  workDir: string;
  /** Reads a secret reference (`{env}` or `{file}`); the value is never printed. `field` names it in errors. */
  secret(ref: SecretRef, field: string): Promise<string>;
  /** The environment of the command (never the process's, in tests). */
  env: NodeJS.ProcessEnv;
  /** A line of progress for the person running the command. */
  log(message: string): void;
}

export interface ProviderPlugin<C = never> {
  readonly type: string;
  /** The `stele build` format hosts of this configuration boot. */
  bootFormat(config: C): string;
  create(config: C, ctx: PluginContext): Promise<Provider>;
}

export interface OrchestratorPlugin<C = never> {
  readonly type: string;
  create(config: C, ctx: PluginContext): Promise<Orchestrator>;
}

export interface StateBackendPlugin<C = never> {
  readonly backend: string;
  create(config: C, ctx: PluginContext): Promise<StateBackend>;
}
