// @stele/fleet-runtime: a fleet.yml turned into adapters (through the registry) and the fleet
// commands the CLI prints: plan, rollout, rollback, status, repair, prune, unlock, publish.
export { isBug, isReported, RuntimeError } from './errors.ts';
export { available, fileState, type Registry, registry } from './registry.ts';
export {
  FleetRuntime,
  loadFleet,
  type PruneReport,
  type RuntimeEvent,
  type RuntimeOptions,
  type StatusReport,
  type Target,
} from './runtime.ts';
export { secretReader } from './secrets.ts';
