// AWS peer: moto 5 (python3) run in-process by our wrapper test/peers/py/moto_wrapper.py, which
// adds /stele/faults (inject API errors by action) and /stele/delays (EC2 instances linger in
// pending / shutting-down / stopping). Validation of AMIs and instance types is on, and no
// default AMIs are loaded: a test registers the images it launches.
import { fileURLToPath } from 'node:url';
import { type PeerProcess, removeDir, spawnPeer, tempDir, waitFor } from './process.ts';

const WRAPPER = fileURLToPath(new URL('../py/moto_wrapper.py', import.meta.url));

export interface MotoInstanceDelays {
  /** Seconds an instance stays `pending` after RunInstances/StartInstances (0: running at once). */
  pendingSeconds?: number;
  /** Seconds an instance stays `shutting-down` after TerminateInstances (0: terminated at once). */
  shuttingDownSeconds?: number;
  /** Seconds an instance stays `stopping` after StopInstances (0: stopped at once). */
  stoppingSeconds?: number;
}

export interface MotoInjectedError {
  action: string;
  code: string;
  count: number;
  httpStatus: number;
  message: string;
  service: string | null;
  fired: number;
}

export interface Moto {
  /** `http://127.0.0.1:PORT`, the endpoint for every AWS SDK client. */
  endpoint: string;
  region: string;
  /** Dummy credentials moto accepts (any would do); SigV4 still names the service. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** moto's own reset (all backends emptied), which also clears injected errors and delays. */
  reset(): Promise<void>;
  /**
   * The next `count` calls of `action` (e.g. `RunInstances`; for JSON protocols the operation of
   * X-Amz-Target) answer with AWS error `code`. `httpStatus` defaults per code
   * (InsufficientInstanceCapacity 500, RequestLimitExceeded 503, Throttling 400, else 400).
   * SDK retries consume the count too; use `maxAttempts: 1` to see the first error.
   */
  injectError(
    action: string,
    code: string,
    count?: number,
    httpStatus?: number,
    opts?: { service?: string; message?: string },
  ): Promise<void>;
  /** Errors still armed. */
  injectedErrors(): Promise<MotoInjectedError[]>;
  setInstanceDelays(delays: MotoInstanceDelays): Promise<void>;
  process: PeerProcess;
  /** Milliseconds from spawn to the server answering. */
  startMs: number;
  stop(): Promise<void>;
}

/** Starts moto on a kernel-chosen loopback port; always `stop()` it. */
export async function startMoto(opts: { region?: string } = {}): Promise<Moto> {
  const dir = tempDir('moto');
  const region = opts.region ?? 'us-east-1';
  const started = Date.now();
  // --port 0: the wrapper binds first and prints its port, so there is no free-port race.
  const proc = spawnPeer('moto', 'python3', [WRAPPER, '--port', '0'], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      PYTHONDONTWRITEBYTECODE: '1',
      PYTHONUNBUFFERED: '1',
      MOTO_ENABLE_AMI_VALIDATION: 'true',
      MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION: 'true',
      MOTO_EC2_LOAD_DEFAULT_AMIS: 'false',
      AWS_DEFAULT_REGION: region,
    },
  });
  try {
    const endpoint = await waitFor(
      async () => {
        const line = proc
          .output()
          .split('\n')
          .find((l) => l.startsWith('{"endpoint"'));
        if (!line) return undefined;
        const url = (JSON.parse(line) as { endpoint: string }).endpoint;
        const res = await fetch(`${url}/stele/health`);
        return res.ok ? url : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50, proc, what: 'moto start' },
    );
    const control = async (method: string, path: string, body?: unknown): Promise<unknown> => {
      const res = await fetch(`${endpoint}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`moto ${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
      return text ? JSON.parse(text) : {};
    };
    return {
      endpoint,
      region,
      credentials: { accessKeyId: 'AKIASTELETESTPEER000', secretAccessKey: 'stele-test-peer-not-a-secret' },
      process: proc,
      startMs: Date.now() - started,
      async reset() {
        await control('POST', '/moto-api/reset');
      },
      async injectError(action, code, count = 1, httpStatus, extra = {}) {
        await control('POST', '/stele/faults', { action, code, count, httpStatus, ...extra });
      },
      async injectedErrors() {
        return ((await control('GET', '/stele/faults')) as { faults: MotoInjectedError[] }).faults;
      },
      async setInstanceDelays(delays) {
        await control('POST', '/stele/delays', delays);
      },
      async stop() {
        try {
          await proc.stop(5_000);
        } finally {
          removeDir(dir);
        }
      },
    };
  } catch (err) {
    await proc.stop(2_000);
    removeDir(dir);
    throw err;
  }
}
