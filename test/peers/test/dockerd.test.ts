import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { extract, pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dockerd, mountsUnder, processGone, startDockerd } from '../src/dockerd.ts';
import { leftovers } from '../src/process.ts';
import { type Registry, registryRequest, startRegistry } from '../src/registry.ts';

/** A build context as a tar: a Dockerfile plus files. */
async function contextTar(files: Record<string, { content: Buffer | string; mode?: number }>): Promise<Readable> {
  const p = pack();
  for (const [name, f] of Object.entries(files)) {
    const content = typeof f.content === 'string' ? Buffer.from(f.content) : f.content;
    p.entry({ name, mode: f.mode ?? 0o644, mtime: new Date(0) }, content);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Readable.from([Buffer.concat(chunks)]);
}

/** Runs a build to the end; rejects with the builder's error message if a step failed. */
async function build(docker: Dockerode, context: Readable, tag: string): Promise<string> {
  const stream = await docker.buildImage(context, { t: tag, rm: true, forcerm: true, networkmode: 'none' });
  const events = await new Promise<Array<{ stream?: string; error?: string; aux?: { ID?: string } }>>(
    (resolve, reject) => docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
  );
  const failed = events.find((e) => e.error);
  if (failed) throw new Error(`build of ${tag} failed: ${failed.error}`);
  return events.map((e) => e.stream ?? '').join('');
}

/** Follows a push/pull progress stream to its end; rejects on an error event. */
async function follow(docker: Dockerode, stream: NodeJS.ReadableStream, what: string): Promise<void> {
  const events = await new Promise<Array<{ error?: string }>>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
  );
  const failed = events.find((e) => e.error);
  if (failed) throw new Error(`${what} failed: ${failed.error}`);
}

/** Reads one file out of a tar stream (as returned by getArchive). */
async function fileFromTar(tar: NodeJS.ReadableStream, name: string): Promise<Buffer | undefined> {
  const ex = extract();
  let found: Buffer | undefined;
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, body, next) => {
      const chunks: Buffer[] = [];
      body.on('data', (c: unknown) => chunks.push(c as Buffer));
      body.on('end', () => {
        if (header.name.replace(/^\.?\//, '') === name) found = Buffer.concat(chunks);
        next();
      });
      body.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  (tar as Readable).pipe(ex);
  await done;
  return found;
}

async function assertStoppedClean(d: Dockerd, extraPids: number[] = []): Promise<void> {
  const pids = [d.process.pid, ...(d.containerdPid ? [d.containerdPid] : []), ...extraPids];
  await d.stop();
  for (const pid of pids) expect(processGone(pid), `pid ${pid} still alive`).toBe(true);
  const left = leftovers().filter((l) => pids.includes(l.pid));
  expect(left).toEqual([]);
  expect(mountsUnder(d.dir)).toEqual([]);
  expect(existsSync(d.dir)).toBe(false);
}

describe('dockerd peer', () => {
  let d: Dockerd;
  beforeAll(async () => {
    d = await startDockerd();
    console.log(`[peers] dockerd ready in ${d.startMs} ms (socket ${d.socketPath}, containerd pid ${d.containerdPid})`);
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('answers the API on its own socket with its own data root and containerd', async () => {
    const info = await d.docker.info();
    expect(info.DockerRootDir).toBe(`${d.dir}/data`);
    expect(info.Driver).toBeTruthy();
    expect(d.containerdPid).toBeGreaterThan(0);
    expect(processGone(d.containerdPid as number)).toBe(false);
    const cmdline = readFileSync(`/proc/${d.containerdPid}/cmdline`, 'utf8');
    expect(cmdline).toContain(d.dir);
  });

  it('builds FROM scratch with COPY and the file is in the image', async () => {
    const payload = `stele ${randomBytes(8).toString('hex')}\n`;
    const tag = 'stele-smoke/scratch:1';
    const t0 = Date.now();
    const log = await build(
      d.docker,
      await contextTar({
        Dockerfile: { content: 'FROM scratch\nCOPY hello.txt /hello.txt\n' },
        'hello.txt': { content: payload },
      }),
      tag,
    );
    console.log(`[peers] dockerd FROM scratch build took ${Date.now() - t0} ms`);
    expect(log).toMatch(/Successfully tagged stele-smoke\/scratch:1/);

    const image = await d.docker.getImage(tag).inspect();
    expect(image.RootFS.Layers).toHaveLength(1);
    expect(image.Os).toBe('linux');

    const container = await d.docker.createContainer({
      Image: tag,
      Cmd: ['/hello.txt'],
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      const archive = await container.getArchive({ path: '/hello.txt' });
      const got = await fileFromTar(archive, 'hello.txt');
      expect(got?.toString('utf8')).toBe(payload);
    } finally {
      await container.remove({ force: true });
    }
  });

  it('stop() takes down dockerd, containerd and a running container even after dockerd crashed', async () => {
    const other = await startDockerd();
    console.log(`[peers] second dockerd ready in ${other.startMs} ms`);
    let containerPid = 0;
    try {
      await build(
        other.docker,
        await contextTar({
          Dockerfile: { content: 'FROM scratch\nCOPY busybox /bin/busybox\n' },
          busybox: { content: readFileSync('/bin/busybox'), mode: 0o755 },
        }),
        'stele-smoke/busybox:1',
      );
      const c = await other.docker.createContainer({
        Image: 'stele-smoke/busybox:1',
        Cmd: ['/bin/busybox', 'sleep', '600'],
        HostConfig: { NetworkMode: 'none' },
      });
      await c.start();
      containerPid = (await c.inspect()).State.Pid;
      expect(containerPid).toBeGreaterThan(0);
      expect(processGone(containerPid)).toBe(false);
      expect(mountsUnder(other.dir).length).toBeGreaterThan(0);
      // Simulate a crash: dockerd gets no chance to stop its container or unmount anything.
      process.kill(other.process.pid, 'SIGKILL');
      await other.process.exited;
      expect(processGone(containerPid)).toBe(false);
    } finally {
      await assertStoppedClean(other, containerPid ? [containerPid] : []);
    }
  });

  it('stop() of a healthy dockerd leaves nothing behind', async () => {
    const t0 = Date.now();
    const pid = d.process.pid;
    await assertStoppedClean(d);
    console.log(`[peers] dockerd stop took ${Date.now() - t0} ms`);
    expect(processGone(pid)).toBe(true);
  });

  it('fails with the tail of its log when dockerd cannot start', async () => {
    await expect(startDockerd({ extraArgs: ['--no-such-flag'], readyTimeoutMs: 20_000 })).rejects.toThrow(
      /exited early[\s\S]*unknown flag: --no-such-flag/,
    );
    await expect(startDockerd({ extraArgs: ['--storage-driver', 'bogus'], readyTimeoutMs: 20_000 })).rejects.toThrow(
      /exited early[\s\S]*error initializing graphdriver/,
    );
  });
});

describe('dockerd peer with a registry mirror and its own containerd', () => {
  let reg: Registry;
  let d: Dockerd;
  beforeAll(async () => {
    reg = await startRegistry();
    d = await startDockerd({ registryMirror: reg.url, insecureRegistries: [reg.host], containerd: 'own' });
    console.log(`[peers] dockerd (own containerd) ready in ${d.startMs} ms`);
  });
  afterAll(async () => {
    await d?.stop();
    await reg?.stop();
  });

  it('is configured with the mirror and the insecure registry', async () => {
    const info = await d.docker.info();
    expect(info.RegistryConfig.Mirrors).toContain(`${reg.url}/`);
    expect(info.RegistryConfig.IndexConfigs[reg.host]?.Secure).toBe(false);
    const cmdline = readFileSync(`/proc/${d.containerdPid}/cmdline`, 'utf8');
    expect(cmdline).toContain(`${d.dir}/ctd/config.toml`);
  });

  it('pushes to the registry and pulls a docker.io name through the mirror', async () => {
    const payload = `mirror ${randomBytes(8).toString('hex')}\n`;
    const local = `${reg.host}/library/stele-mirror:1`;
    await build(
      d.docker,
      await contextTar({
        Dockerfile: { content: 'FROM scratch\nCOPY m.txt /m.txt\n' },
        'm.txt': { content: payload },
      }),
      local,
    );
    const t0 = Date.now();
    await follow(
      d.docker,
      await d.docker.getImage(local).push({ authconfig: { serveraddress: reg.host } }),
      `push ${local}`,
    );
    console.log(`[peers] docker push to the registry peer took ${Date.now() - t0} ms`);
    const head = await registryRequest(reg, '/v2/library/stele-mirror/manifests/1', {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(head.status).toBe(200);

    await d.docker.getImage(local).remove({ force: true });
    // No internet here: docker.io/library/stele-mirror can only come from the mirror.
    await follow(d.docker, await d.docker.pull('stele-mirror:1'), 'pull stele-mirror:1');
    const pulled = await d.docker.getImage('stele-mirror:1').inspect();
    expect(pulled.RepoDigests.some((r) => r.endsWith(String(head.headers['docker-content-digest'])))).toBe(true);
    const c = await d.docker.createContainer({
      Image: 'stele-mirror:1',
      Cmd: ['/m.txt'],
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      expect((await fileFromTar(await c.getArchive({ path: '/m.txt' }), 'm.txt'))?.toString()).toBe(payload);
    } finally {
      await c.remove({ force: true });
    }
  });

  it('stop() also stops the containerd it started', async () => {
    await assertStoppedClean(d);
  });
});
