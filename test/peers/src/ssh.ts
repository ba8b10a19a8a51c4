// ssh into a guest the tests (or the demo) booted: connect as root with a key, retrying while
// the guest boots, and run commands.
import ssh2 from 'ssh2';

// ssh2 is CommonJS: its named exports come through the default import.
const { Client, utils } = ssh2;
export type SshClient = InstanceType<typeof Client>;

export interface SshResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A fresh ed25519 key pair (OpenSSH formats) for a guest's authorized_keys. */
export function sshKeyPair(comment: string): { public: string; private: string } {
  const keys = utils.generateKeyPairSync('ed25519', { comment });
  return { public: keys.public, private: keys.private };
}

/** Connects to 127.0.0.1:`port` as root with `privateKey`, retrying until sshd answers. */
export async function connectSsh(port: number, privateKey: string, timeoutMs: number): Promise<SshClient> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      return await new Promise<SshClient>((ok, fail) => {
        const c = new Client();
        c.once('ready', () => ok(c));
        // 'on', not 'once': a connection torn down mid-handshake may report more than one error.
        c.on('error', (e) => {
          c.end();
          fail(e);
        });
        c.connect({ host: '127.0.0.1', port, username: 'root', privateKey, readyTimeout: 20_000 });
      });
    } catch (err) {
      lastErr = err;
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }
  throw new Error(`ssh to 127.0.0.1:${port} not ready after ${timeoutMs} ms: ${(lastErr as Error)?.message}`);
}

/** Runs `command` over `client`; resolves with its exit code and output (never rejects on a non-zero code). */
export function sshExec(client: SshClient, command: string): Promise<SshResult> {
  return new Promise((ok, fail) => {
    client.exec(command, (err, stream) => {
      if (err) return fail(err);
      let stdout = '';
      let stderr = '';
      let code = -1;
      stream.on('data', (d: Buffer) => {
        stdout += d.toString('utf8');
      });
      stream.stderr.on('data', (d: Buffer) => {
        stderr += d.toString('utf8');
      });
      stream.on('exit', (c: number | null) => {
        code = c ?? -1;
      });
      stream.on('close', () => ok({ code, stdout, stderr }));
    });
  });
}

/**
 * Runs `command` until it exits 0 with some output (a service in the guest may still be
 * starting), every 3 s up to `timeoutMs`; returns the last result, successful or not.
 */
export async function sshUntil(client: SshClient, command: string, timeoutMs: number): Promise<SshResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await sshExec(client, command);
    if ((r.code === 0 && r.stdout.trim()) || Date.now() > deadline) return r;
    await new Promise((resolve) => setTimeout(resolve, 3_000));
  }
}
