// moto peer through the real @aws-sdk/client-ec2: AMI registration, RunInstances, injected API
// errors, delayed instance state changes and reset.
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
  EC2ServiceException,
  type Instance,
  RegisterImageCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isAlive, type Moto, startMoto } from '../src/index.ts';

describe('moto (EC2) through @aws-sdk/client-ec2', () => {
  let moto: Moto;
  let ec2: EC2Client;

  beforeAll(async () => {
    moto = await startMoto();
    console.log(`[moto] started in ${moto.startMs} ms at ${moto.endpoint}`);
    ec2 = new EC2Client({
      endpoint: moto.endpoint,
      region: moto.region,
      credentials: moto.credentials,
      maxAttempts: 1, // surface the first error; an SDK retry would use up an injected one
    });
  });

  afterAll(async () => {
    ec2?.destroy();
    const pid = moto?.process.pid;
    await moto?.stop();
    if (pid !== undefined) expect(isAlive(pid)).toBe(false);
  });

  beforeEach(async () => {
    const t0 = Date.now();
    await moto.reset();
    console.log(`[moto] reset in ${Date.now() - t0} ms`);
  });

  async function registerAmi(name = 'stele-test'): Promise<string> {
    const res = await ec2.send(
      new RegisterImageCommand({
        Name: name,
        Architecture: 'x86_64',
        RootDeviceName: '/dev/xvda',
        VirtualizationType: 'hvm',
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 8 } }],
      }),
    );
    if (!res.ImageId) throw new Error('RegisterImage returned no ImageId');
    return res.ImageId;
  }

  async function runOne(imageId: string): Promise<Instance> {
    const res = await ec2.send(
      new RunInstancesCommand({ ImageId: imageId, InstanceType: 't3.micro', MinCount: 1, MaxCount: 1 }),
    );
    const inst = res.Instances?.[0];
    if (!inst?.InstanceId) throw new Error('RunInstances returned no instance');
    return inst;
  }

  async function stateOf(id: string): Promise<string | undefined> {
    const res = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return res.Reservations?.[0]?.Instances?.[0]?.State?.Name;
  }

  async function errorOf(p: Promise<unknown>): Promise<EC2ServiceException> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof EC2ServiceException)) throw new Error(`expected an EC2 service error, got ${String(err)}`);
    return err;
  }

  it('validates AMIs: an unknown image fails, a registered one launches', async () => {
    const unknown = await errorOf(
      ec2.send(
        new RunInstancesCommand({
          ImageId: 'ami-0123456789abcdef0',
          InstanceType: 't3.micro',
          MinCount: 1,
          MaxCount: 1,
        }),
      ),
    );
    expect(unknown.name).toBe('InvalidAMIID.NotFound');

    const imageId = await registerAmi();
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
    expect(images.Images?.map((i) => i.ImageId)).toEqual([imageId]);

    const inst = await runOne(imageId);
    expect(inst.InstanceId).toMatch(/^i-[0-9a-f]+$/);
    const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [inst.InstanceId as string] }));
    const seen = described.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    expect(seen.map((i) => [i.InstanceId, i.ImageId, i.InstanceType, i.State?.Name])).toEqual([
      [inst.InstanceId, imageId, 't3.micro', 'running'],
    ]);
  });

  it('validates instance types', async () => {
    const imageId = await registerAmi();
    const err = await errorOf(
      ec2.send(
        new RunInstancesCommand({ ImageId: imageId, InstanceType: 't9.nonsense' as never, MinCount: 1, MaxCount: 1 }),
      ),
    );
    expect(err.name).toBe('InvalidInstanceType.NotFound');
  });

  it('an injected InsufficientInstanceCapacity surfaces as that SDK error, then the call succeeds', async () => {
    const imageId = await registerAmi();
    await moto.injectError('RunInstances', 'InsufficientInstanceCapacity', 1);
    expect(await moto.injectedErrors()).toEqual([
      expect.objectContaining({
        action: 'RunInstances',
        code: 'InsufficientInstanceCapacity',
        httpStatus: 500,
        count: 1,
      }),
    ]);

    const err = await errorOf(runOne(imageId));
    expect(err.name).toBe('InsufficientInstanceCapacity');
    expect(err.$metadata.httpStatusCode).toBe(500);
    expect(err.message).toContain('InsufficientInstanceCapacity');
    expect(await moto.injectedErrors()).toEqual([]);

    // Nothing was launched by the failed call; the next one reaches moto.
    expect((await ec2.send(new DescribeInstancesCommand({}))).Reservations ?? []).toEqual([]);
    expect((await runOne(imageId)).InstanceId).toBeTruthy();
  });

  it('throttling errors carry their status, other actions pass through, and count N is honoured', async () => {
    await moto.injectError('DescribeInstances', 'RequestLimitExceeded', 2);
    await moto.injectError('DescribeImages', 'Throttling', 1, 400, { service: 'ec2' });
    await moto.injectError('DescribeImages', 'Throttling', 1, undefined, { service: 'autoscaling' });

    for (let i = 0; i < 2; i++) {
      const err = await errorOf(ec2.send(new DescribeInstancesCommand({})));
      expect([err.name, err.$metadata.httpStatusCode]).toEqual(['RequestLimitExceeded', 503]);
    }
    expect((await ec2.send(new DescribeInstancesCommand({}))).Reservations ?? []).toEqual([]);

    const throttled = await errorOf(ec2.send(new DescribeImagesCommand({ Owners: ['self'] })));
    expect([throttled.name, throttled.$metadata.httpStatusCode]).toEqual(['Throttling', 400]);
    // The entry limited to another service is still armed, and does not hit EC2.
    expect((await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images).toEqual([]);
    expect(await moto.injectedErrors()).toEqual([expect.objectContaining({ service: 'autoscaling', count: 1 })]);
  });

  it('SDK retries consume injected throttling errors (default retry strategy)', async () => {
    const retrying = new EC2Client({
      endpoint: moto.endpoint,
      region: moto.region,
      credentials: moto.credentials,
      maxAttempts: 3,
    });
    try {
      await moto.injectError('DescribeInstances', 'RequestLimitExceeded', 2);
      const res = await retrying.send(new DescribeInstancesCommand({}));
      expect(res.$metadata.attempts).toBe(3);
      expect(await moto.injectedErrors()).toEqual([]);
    } finally {
      retrying.destroy();
    }
  });

  it('with delays, instances are pending then running, shutting-down then terminated', async () => {
    const imageId = await registerAmi();
    await moto.setInstanceDelays({ pendingSeconds: 1.5, shuttingDownSeconds: 1.5 });

    const t0 = Date.now();
    const inst = await runOne(imageId);
    const id = inst.InstanceId as string;
    expect(inst.State?.Name).toBe('pending');
    expect(await stateOf(id)).toBe('pending');
    const running = await pollState(id, 'running', 10_000);
    const pendingFor = Date.now() - t0;
    expect(running).toBe('running');
    expect(pendingFor).toBeGreaterThanOrEqual(1_400);
    console.log(`[moto] instance pending for ~${pendingFor} ms (delay 1.5 s)`);

    const t1 = Date.now();
    const term = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect(term.TerminatingInstances?.[0]).toMatchObject({
      CurrentState: { Name: 'shutting-down' },
      PreviousState: { Name: 'running' },
    });
    expect(await stateOf(id)).toBe('shutting-down');
    expect(await pollState(id, 'terminated', 10_000)).toBe('terminated');
    expect(Date.now() - t1).toBeGreaterThanOrEqual(1_400);

    // Filters see the interim state too.
    const second = await runOne(imageId);
    const pendingOnes = await ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending'] }] }),
    );
    expect(pendingOnes.Reservations?.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId)).toEqual([
      second.InstanceId,
    ]);
  });

  it('without delays (moto default) instances are running at once', async () => {
    const imageId = await registerAmi();
    const inst = await runOne(imageId);
    expect(await stateOf(inst.InstanceId as string)).toBe('running');
  });

  it('reset() empties EC2 state and clears injected errors and delays', async () => {
    const imageId = await registerAmi();
    await moto.setInstanceDelays({ pendingSeconds: 30 });
    await runOne(imageId);
    await moto.injectError('RunInstances', 'InsufficientInstanceCapacity', 5);

    await moto.reset();
    expect(await moto.injectedErrors()).toEqual([]);
    expect((await ec2.send(new DescribeInstancesCommand({}))).Reservations ?? []).toEqual([]);
    expect((await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images ?? []).toEqual([]);

    const again = await registerAmi();
    const inst = await runOne(again);
    expect(await stateOf(inst.InstanceId as string)).toBe('running');
  });

  it('rejects malformed control requests with a clear error', async () => {
    await expect(moto.injectError('RunInstances', '', 1)).rejects.toThrow(/400 .*action and code/);
    await expect(moto.injectError('RunInstances', 'X', 0)).rejects.toThrow(/count must be at least 1/);
    await expect(moto.setInstanceDelays({ pendingSeconds: -1 })).rejects.toThrow(/between 0 and 3600/);
    await expect(moto.setInstanceDelays({ pendingSecs: 1 } as unknown as { pendingSeconds: number })).rejects.toThrow(
      /unknown delay 'pendingSecs'/,
    );
  });

  async function pollState(id: string, want: string, timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    let state = await stateOf(id);
    while (state !== want && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      state = await stateOf(id);
    }
    return state;
  }
});
