// The contract suites every adapter runs against its real peer: what the engine relies on from a
// provider and from an orchestrator, checked the same way for each (`providerContract`,
// `orchestratorContract` inside a vitest file of the adapter's package).
export { type OrchestratorHarness, orchestratorContract } from './orchestrator.ts';
export { type ProviderHarness, providerContract } from './provider.ts';
