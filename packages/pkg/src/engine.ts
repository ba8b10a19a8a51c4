import type { Readable } from 'node:stream';

/** One image build, for one platform. */
export interface BuildRequest {
  /** The build context as a tar stream. */
  context: Readable;
  /** Path of the Dockerfile inside the context. */
  dockerfile: string;
  /** Name the result is tagged with in the engine, e.g. `docker.io/org/img:tag-arm64`. */
  tag: string;
  /** `linux/<arch>`. */
  platform: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  /** `none` (no network) or `host` (engines without a bridge have no other). */
  network: 'none' | 'host';
  noCache?: boolean;
  /** Each line of build output, as it arrives. */
  onLog?: (line: string) => void;
}

export interface BuildResult {
  /** The engine's image id (`sha256:…`, the config digest). */
  imageId: string;
}

/** A build that ran and failed: the step that failed and the last lines of its output. */
export class BuildFailedError extends Error {
  constructor(
    message: string,
    readonly step: string | undefined,
    readonly logTail: string[],
  ) {
    super(message);
    this.name = 'BuildFailedError';
  }
}

/** The engine could not be reached at all. */
export class EngineUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineUnavailableError';
  }
}

/**
 * What package builds need from a container engine. `dockerEngine()` (docker-engine.ts) talks
 * to a Docker Engine through dockerode; tests may use an in-memory one.
 */
export interface Engine {
  /** For messages, e.g. `unix:///var/run/docker.sock`. */
  describe(): string;
  /** Throws EngineUnavailableError (saying how to start one) when nothing answers. */
  ping(): Promise<void>;
  /** The engine's own architecture in OCI terms (`amd64`, `arm64`, …). */
  nativeArch(): Promise<string>;
  build(req: BuildRequest): Promise<BuildResult>;
  /** The image id a reference points at, or undefined. */
  imageId(ref: string): Promise<string | undefined>;
  /** Points `target` at the image `source` names. */
  tag(source: string, target: string): Promise<void>;
  /** The image as a `docker save` archive. */
  save(ref: string): Promise<Readable>;
  /** Loads a `docker save` archive (its RepoTags name the images). */
  load(archive: Readable): Promise<void>;
}
