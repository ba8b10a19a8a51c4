// The orchestrator contract against a real multi-node Swarm: a manager and the joining hosts are
// dockerd engines in network namespaces of one private LAN, each with its own hostname. A host
// joins as pkg/swarm-join does at boot (the first manager of the user data that lets it in, with
// its token); "does this join data still admit a node" is answered by a real join of a probe
// engine. A probe that was let in is removed from the swarm and a fresh one made for the next
// question (leaving a swarm takes a worker ~5 s, starting an engine ~2 s); a refused one stays
// out of any swarm and is asked again.
import type { UserData } from '@stele/fleet';
import { orchestratorContract } from '@stele/fleet/contract';
import { type Dockerd, type Lan, startDockerd, startLan } from '@stele/test-peers';
import type Dockerode from 'dockerode';
import { plugin } from '../src/index.ts';

/** The manager's Swarm port (each engine has its own namespace, so the default is free). */
const SWARM_PORT = 2377;

interface NodeInfo {
  ID: string;
  Description?: { Hostname?: string };
  Spec?: { Availability?: string };
}

/** swarm/manager (one address a line) and swarm/token, as pkg/swarm-join reads them. */
function joinData(userdata: UserData): { managers: string[]; token: string } {
  const swarm = userdata.swarm;
  const file = (name: string) => {
    const entry = swarm && 'entries' in swarm ? swarm.entries[name] : undefined;
    if (!entry || !('content' in entry)) throw new Error(`user data has no file swarm/${name}`);
    return entry.content.trim();
  };
  return { managers: file('manager').split('\n').filter(Boolean), token: file('token') };
}

/** Joins the swarm like `docker swarm join --token T --advertise-addr A MANAGER`, manager after manager. */
async function join(docker: Dockerode, address: string, userdata: UserData): Promise<void> {
  const { managers, token } = joinData(userdata);
  let last: unknown;
  for (const manager of managers) {
    try {
      await docker.swarmJoin({
        ListenAddr: `0.0.0.0:${SWARM_PORT}`,
        AdvertiseAddr: address,
        RemoteAddrs: [manager],
        JoinToken: token,
      });
      return;
    } catch (err) {
      last = err;
    }
  }
  throw last ?? new Error('user data names no manager');
}

orchestratorContract('swarm (a manager and workers in network namespaces)', async () => {
  const engines: Dockerd[] = [];
  let lan: Lan | undefined;
  const cleanup = async () => {
    const results = await Promise.allSettled(engines.map((d) => d.stop()));
    await lan?.stop();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  try {
    lan = await startLan();
    const network = lan;
    /** A new machine on the LAN running dockerd with this hostname. */
    const machine = async (hostname: string) => {
      const ns = await network.attach();
      const engine = await startDockerd({ netns: ns.path, hostname });
      engines.push(engine);
      return { engine, address: ns.address };
    };
    let probes = 1;
    const [manager, firstProbe] = await Promise.all([machine('manager'), machine(`contract-probe-${probes}`)]);
    let probe: ReturnType<typeof machine> | undefined = Promise.resolve(firstProbe);
    const advertise = `${manager.address}:${SWARM_PORT}`;
    await manager.engine.docker.swarmInit({ ListenAddr: advertise, AdvertiseAddr: advertise });
    const nodes = async (hostname: string) =>
      ((await manager.engine.docker.listNodes()) as NodeInfo[]).filter((n) => n.Description?.Hostname === hostname);

    return {
      hostName: 'contract-1-1',
      timeoutMs: 60_000,
      orchestrator: () =>
        plugin.create(
          { type: 'swarm', endpoint: `unix://${manager.engine.socketPath}`, drainSeconds: 10, rotateJoinToken: true },
          {
            fleet: 'contract',
            fleetFile: '/nonexistent/fleet.yml',
            workDir: '/nonexistent/.stele',
            env: {},
            log: () => undefined,
            secret: () => Promise.reject(new Error('no secret is needed without tls')),
          },
        ),
      async join(name, userdata) {
        const host = await machine(name);
        await join(host.engine.docker, host.address, userdata);
      },
      async drained(name) {
        const found = await nodes(name);
        return found.length > 0 && found.every((n) => n.Spec?.Availability === 'drain');
      },
      async known(name) {
        return (await nodes(name)).length > 0;
      },
      async admits(userdata) {
        probe ??= machine(`contract-probe-${++probes}`);
        const { engine, address } = await probe;
        try {
          await join(engine.docker, address, userdata);
        } catch (err) {
          // Only the manager's refusal of the token counts; anything else is a broken test bed.
          if (/valid join token is necessary/.test((err as Error).message)) return false;
          throw err;
        }
        probe = undefined;
        const { Swarm } = (await engine.docker.info()) as { Swarm: { NodeID: string } };
        await manager.engine.docker.getNode(Swarm.NodeID).remove({ force: true });
        return true;
      },
      cleanup,
    };
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }
});
