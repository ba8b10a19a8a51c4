// @stele/fleet: the fleet model, the blue-green planner, the journaled engine, the ports every
// provider, orchestrator, health check and state backend implements, and the state store.
export {
  createToken,
  type RolloutDeps,
  RolloutError,
  type RolloutEvent,
  RolloutInterrupted,
  type RolloutSettings,
  resumeRollout,
  retireHosts,
  rollbackRollout,
  startRollout,
} from './engine.ts';
export {
  classify,
  DEFAULT_RETRY,
  type ErrorKind,
  FleetError,
  messageOf,
  type RetryPolicy,
  retrying,
} from './errors.ts';
export {
  formatPlan,
  generationOf,
  hostName,
  type Plan,
  PlanError,
  type PlanSettings,
  planRollout,
  shortImage,
  UNKNOWN_WORLD,
  type World,
} from './plan.ts';
export type { OrchestratorPlugin, PluginContext, ProviderPlugin, StateBackendPlugin } from './plugin.ts';
export type {
  BuiltImage,
  Clock,
  CreateRequest,
  HealthChecker,
  HealthResult,
  Lease,
  LeaseHolder,
  Orchestrator,
  ProvidedHost,
  Provider,
  PublishedImage,
  PublishProgress,
  StateBackend,
  StateJournal,
} from './ports.ts';
export { realClock } from './ports.ts';
export { type Refresh, refresh } from './refresh.ts';
export { checkSavedPlan, parseSavedPlan, type SavedPlan, savedPlan } from './saved-plan.ts';
export { FileStateBackend, lapsed } from './state/file.ts';
export { committedHosts, parseState } from './state/schema.ts';
export {
  describeLease,
  LeaseLostError,
  LockHeldError,
  StateConflictError,
  StateError,
  StateSession,
  StateStore,
} from './state/store.ts';
export {
  emptyState,
  type FleetState,
  type HostRecord,
  type HostStatus,
  mergeUserData,
  type PublishedRecord,
  type RolloutPhase,
  type RolloutRecord,
  type RolloutSummary,
  STATE_VERSION,
  type Step,
  type StepStatus,
  type UserData,
  type UserDataEntry,
} from './types.ts';
