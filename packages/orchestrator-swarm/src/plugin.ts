// What the fleet runtime's registry knows this package by: `orchestrator: {type: swarm, …}` in a
// fleet.yml becomes a SwarmOrchestrator, its TLS secrets read through the runtime. This is the
// one place that turns that section into orchestrator options.
import type { OrchestratorPlugin } from '@stele/fleet';
import type { Orchestrator as OrchestratorConfig } from '@stele/manifest';
import { SwarmOrchestrator } from './orchestrator.ts';

/** The swarm section of a fleet.yml (as parsed: drainSeconds has its default). */
export type SwarmConfig = Extract<OrchestratorConfig, { type: 'swarm' }>;

export const plugin: OrchestratorPlugin<SwarmConfig> = {
  type: 'swarm',
  async create(config, ctx) {
    const tls = config.tls && {
      ca: await ctx.secret(config.tls.ca, 'orchestrator.tls.ca'),
      cert: await ctx.secret(config.tls.cert, 'orchestrator.tls.cert'),
      key: await ctx.secret(config.tls.key, 'orchestrator.tls.key'),
    };
    const orchestrator = new SwarmOrchestrator({
      endpoint: config.endpoint,
      drainSeconds: config.drainSeconds,
      ...(tls ? { tls } : {}),
      ...(config.labels ? { labels: config.labels } : {}),
    });
    if (config.rotateJoinToken === false) {
      // The fleet asked not to: another fleet or tool may be joining hosts with the same token.
      orchestrator.rotateJoinSecret = async () => {
        ctx.log(`${ctx.fleet}: the swarm's worker join token is not rotated (rotateJoinToken: false)`);
      };
    }
    return orchestrator;
  },
};
