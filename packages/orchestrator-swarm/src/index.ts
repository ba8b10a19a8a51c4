// @stele/orchestrator-swarm: fleet hosts join a Docker Swarm and are drained and removed from it.
// The runtime uses `plugin`; SwarmOrchestrator is its port implementation.

export { SwarmError, SwarmOrchestrator, type SwarmOrchestratorOptions } from './orchestrator.ts';
export { plugin, type SwarmConfig } from './plugin.ts';
