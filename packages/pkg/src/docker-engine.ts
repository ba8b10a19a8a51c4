import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { decodeTrace, TraceRenderer } from './buildkit-trace.ts';
import { dockerClientOptions } from './docker-endpoint.ts';
import {
  BuildFailedError,
  type BuildRequest,
  type BuildResult,
  type Engine,
  EngineUnavailableError,
} from './engine.ts';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

/** How to start an engine, for messages when none answers. */
export const START_ENGINE_HINT =
  'start a Docker Engine (`sudo systemctl start docker`, or `sudo dockerd &`; Debian package docker.io), ' +
  'or point DOCKER_HOST at one that runs (e.g. DOCKER_HOST=unix:///path/to/docker.sock)';

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT']);

async function collect(stream: NodeJS.ReadableStream, onLine: (line: string) => void): Promise<void> {
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) onLine(l);
    });
    stream.on('end', () => {
      if (buf.trim()) onLine(buf);
      resolve();
    });
    stream.on('error', reject);
  });
}

interface StreamMessage {
  id?: string;
  aux?: unknown;
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * A Docker Engine through dockerode. Builds use BuildKit (`version: '2'`), the only builder of
 * the Engine API that honours `platform` (the classic one silently builds the host arch).
 */
export function dockerEngine(host = process.env.DOCKER_HOST || DEFAULT_DOCKER_HOST): Engine {
  const options = dockerClientOptions(host);
  // dockerode is loaded on first use: commands that never reach an engine start faster.
  let client: Promise<Dockerode> | undefined;
  const docker = () => {
    client ??= import('dockerode').then((m) => new m.default(options));
    return client;
  };
  let arch: Promise<string> | undefined;

  const unavailable = (err: unknown): never => {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (UNREACHABLE.has(code) || err instanceof EngineUnavailableError) {
      throw new EngineUnavailableError(
        `cannot reach a Docker Engine at ${host} (${(err as Error).message}): ${START_ENGINE_HINT}`,
      );
    }
    throw err;
  };

  const engine: Engine = {
    describe: () => host,

    async ping() {
      try {
        await (await docker()).ping();
      } catch (err) {
        unavailable(err);
      }
    },

    nativeArch() {
      arch ??= docker()
        .then((d) => d.version())
        .then(
          (v) => normaliseArch(v.Arch),
          (err) => unavailable(err),
        );
      return arch;
    },

    async build(req: BuildRequest): Promise<BuildResult> {
      let stream: NodeJS.ReadableStream;
      try {
        stream = await (await docker()).buildImage(
          req.context as unknown as NodeJS.ReadableStream,
          {
            version: '2',
            dockerfile: req.dockerfile,
            t: req.tag,
            platform: req.platform,
            buildargs: req.buildArgs,
            labels: req.labels,
            networkmode: req.network,
            nocache: req.noCache ?? false,
            rm: true,
            forcerm: true,
          } as Dockerode.ImageBuildOptions,
        );
      } catch (err) {
        unavailable(err);
        throw err;
      }
      const renderer = new TraceRenderer();
      const plain: string[] = [];
      let imageId: string | undefined;
      let error: string | undefined;
      await collect(stream, (line) => {
        let msg: StreamMessage;
        try {
          msg = JSON.parse(line) as StreamMessage;
        } catch {
          req.onLog?.(line);
          return;
        }
        if (msg.id === 'moby.buildkit.trace' && typeof msg.aux === 'string') {
          for (const l of renderer.feed(decodeTrace(msg.aux))) req.onLog?.(l);
        } else if (msg.id === 'moby.image.id' && msg.aux && typeof msg.aux === 'object') {
          imageId = (msg.aux as { ID?: string }).ID;
        } else if (msg.errorDetail || msg.error) {
          error = msg.errorDetail?.message ?? msg.error;
        } else if (msg.stream) {
          for (const l of msg.stream.replace(/\n$/, '').split('\n')) {
            plain.push(l);
            req.onLog?.(l);
          }
        } else if (msg.aux && typeof msg.aux === 'object' && 'ID' in msg.aux) {
          imageId = (msg.aux as { ID: string }).ID;
        }
      });
      if (error !== undefined) {
        const step = renderer.failed?.name;
        const tail = renderer.failed ? renderer.tail(20) : plain.slice(-20);
        throw new BuildFailedError(error, step, tail);
      }
      imageId ??= await engine.imageId(req.tag);
      if (!imageId) throw new Error(`the engine reported no image for ${req.tag}`);
      return { imageId };
    },

    async imageId(ref) {
      try {
        return (await (await docker()).getImage(ref).inspect()).Id;
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        return unavailable(err);
      }
    },

    async tag(source, target) {
      const colon = target.lastIndexOf(':');
      const slash = target.lastIndexOf('/');
      const [repo, tag] = colon > slash ? [target.slice(0, colon), target.slice(colon + 1)] : [target, 'latest'];
      await (await docker()).getImage(source).tag({ repo, tag });
    },

    async save(ref) {
      try {
        return (await (await docker()).getImage(ref).get()) as unknown as Readable;
      } catch (err) {
        return unavailable(err);
      }
    },

    async load(archive) {
      const stream = await (await docker()).loadImage(archive as unknown as NodeJS.ReadableStream, { quiet: true });
      let error: string | undefined;
      await collect(stream, (line) => {
        try {
          const msg = JSON.parse(line) as StreamMessage;
          if (msg.errorDetail || msg.error) error = msg.errorDetail?.message ?? msg.error;
        } catch {
          /* plain text progress */
        }
      });
      if (error) throw new Error(`loading an image into ${host} failed: ${error}`);
    },
  };
  return engine;
}

/** Docker and Node name some arches differently from OCI. */
export function normaliseArch(arch: string): string {
  const map: Record<string, string> = { x86_64: 'amd64', x64: 'amd64', aarch64: 'arm64', armhf: 'arm', i386: '386' };
  return map[arch] ?? arch;
}
