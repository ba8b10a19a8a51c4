import Dockerode from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { DockerEndpointError, dockerClientOptions } from '../src/docker-endpoint.ts';

const tls = { ca: 'CA', cert: 'CERT', key: 'KEY' };
const saved = { ...process.env };
afterEach(() => {
  for (const k of ['DOCKER_HOST', 'DOCKER_TLS_VERIFY', 'DOCKER_PATH_PREFIX', 'DOCKER_CLIENT_TIMEOUT']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

describe('dockerClientOptions', () => {
  it('reads unix, tcp, http and https endpoints, TLS on tcp', () => {
    expect(dockerClientOptions('unix:///run/docker.sock')).toMatchObject({
      socketPath: '/run/docker.sock',
      host: undefined,
    });
    expect(dockerClientOptions('tcp://10.0.0.2')).toMatchObject({ host: '10.0.0.2', port: 2375, protocol: 'http' });
    expect(dockerClientOptions('tcp://[::1]:2376', { tls })).toMatchObject({
      host: '::1',
      port: 2376,
      protocol: 'https',
      ...tls,
    });
    expect(dockerClientOptions('https://manager/')).toMatchObject({ host: 'manager', port: 2376, protocol: 'https' });
    expect(dockerClientOptions('unix:///s', { timeout: 5, connectionTimeout: 2 })).toMatchObject({
      timeout: 5,
      connectionTimeout: 2,
    });
  });

  it('refuses what names no engine, as the user mistake it is', () => {
    for (const bad of ['ftp://x', '/var/run/docker.sock', 'unix://relative.sock', 'tcp://h:port', 'ssh://u@h']) {
      expect(() => dockerClientOptions(bad), bad).toThrow(DockerEndpointError);
    }
    expect(() => dockerClientOptions('http://h:2375', { tls })).toThrow(/plain http/);
    expect(() => dockerClientOptions('unix:///s', { tls })).toThrow(/tls does not apply/);
  });

  it('sets every field, so DOCKER_* variables never reach dockerode', () => {
    process.env.DOCKER_HOST = 'tcp://leak.invalid:2376';
    process.env.DOCKER_TLS_VERIFY = '1';
    process.env.DOCKER_PATH_PREFIX = '/leak';
    process.env.DOCKER_CLIENT_TIMEOUT = '1';
    const unix = new Dockerode(dockerClientOptions('unix:///run/docker.sock')).modem as unknown as Record<
      string,
      unknown
    >;
    expect(unix).toMatchObject({ socketPath: '/run/docker.sock', host: undefined, protocol: 'http' });
    expect(unix.pathPrefix).toBeUndefined();
    expect(unix.timeout).toBeUndefined();
    const tcp = new Dockerode(dockerClientOptions('tcp://10.0.0.2:2375')).modem as unknown as Record<string, unknown>;
    expect(tcp).toMatchObject({ host: '10.0.0.2', port: 2375, protocol: 'http', pathPrefix: undefined });
  });
});
