// A Docker endpoint as DOCKER_HOST spells it → dockerode's options. Every field is set (undefined
// where unused), so dockerode never fills one in from DOCKER_HOST, DOCKER_TLS_VERIFY or
// DOCKER_CERT_PATH. Imports dockerode's types only: `@stele/pkg/docker-endpoint` loads nothing.
import type Dockerode from 'dockerode';

/** PEM client certificate, its key and the CA that signed the daemon's certificate. */
export interface DockerTls {
  ca: string;
  cert: string;
  key: string;
}

/** dockerode's options, with the two docker-modem reads its types leave out. */
export type DockerClientOptions = Dockerode.DockerOptions & { pathPrefix?: string; connectionTimeout?: number };

export interface DockerEndpointOptions {
  /** Makes `tcp://` speak TLS (the daemon verified against `ca`); refused for `unix://` and `http://`. */
  tls?: DockerTls;
  /** Milliseconds a request may take (default: no limit; builds take long). */
  timeout?: number;
  /** Milliseconds to connect. */
  connectionTimeout?: number;
}

/** An endpoint that names no Docker Engine Stele can talk to: the user's mistake. */
export class DockerEndpointError extends Error {
  override name = 'DockerEndpointError';
}

/** `unix:///path`, or `tcp://`, `http://` or `https://` with a host (IPv6 in brackets) and an optional port. */
export function dockerClientOptions(endpoint: string, opts: DockerEndpointOptions = {}): DockerClientOptions {
  const { tls } = opts;
  const base: DockerClientOptions = {
    socketPath: undefined,
    host: undefined,
    port: undefined,
    protocol: undefined,
    username: undefined,
    ca: undefined,
    cert: undefined,
    key: undefined,
    version: undefined,
    pathPrefix: undefined,
    timeout: opts.timeout,
    connectionTimeout: opts.connectionTimeout,
  };
  if (endpoint.startsWith('ssh://')) {
    throw new DockerEndpointError('ssh:// Docker endpoints are not supported yet; use tcp:// with tls or unix://');
  }
  if (endpoint.startsWith('unix://')) {
    const socketPath = endpoint.slice('unix://'.length);
    if (!socketPath.startsWith('/'))
      throw new DockerEndpointError(`bad Docker endpoint '${endpoint}': want unix:///absolute/path`);
    if (tls) throw new DockerEndpointError(`tls does not apply to the unix socket endpoint ${endpoint}`);
    return { ...base, socketPath };
  }
  const m = /^(tcp|http|https):\/\/([^/:[\]]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?\/?$/.exec(endpoint);
  if (!m) {
    throw new DockerEndpointError(
      `bad Docker endpoint '${endpoint}': want unix:///path, tcp://host:port or https://host:port`,
    );
  }
  const [, scheme, rawHost = '', port] = m;
  if (scheme === 'http' && tls) {
    throw new DockerEndpointError(`tls is set but the endpoint ${endpoint} is plain http: use tcp:// or https://`);
  }
  const protocol = scheme === 'https' || (scheme === 'tcp' && tls) ? 'https' : 'http';
  return {
    ...base,
    host: rawHost.replace(/^\[(.*)\]$/, '$1'),
    port: port ? Number(port) : protocol === 'https' ? 2376 : 2375,
    protocol,
    ...(tls ? { ca: tls.ca, cert: tls.cert, key: tls.key } : {}),
  };
}
