// The port to the host programs the output formats need (xorriso, mtools, mkfs.vfat, qemu-img,
// grub-mkimage) and its adapter, which spawns them. Formats only ever call `tools.run`, so a test
// can record or fake the calls; the end-to-end tests use the real adapter.
import { spawn } from 'node:child_process';

export interface RunOptions {
  cwd?: string;
  /** Added to the environment (the adapter keeps PATH and friends). */
  env?: Record<string, string>;
  /** Kill the program after this long; default 10 minutes. */
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface HostTools {
  /** Runs `cmd args…`; resolves on exit code 0, rejects with a readable Error otherwise. */
  run(cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

/** Debian package that provides each program, for "not found" errors. */
const PACKAGE_OF: Record<string, string> = {
  xorriso: 'xorriso',
  'mkfs.vfat': 'dosfstools',
  mformat: 'mtools',
  mcopy: 'mtools',
  mmd: 'mtools',
  mdir: 'mtools',
  'qemu-img': 'qemu-utils',
  'grub-mkimage': 'grub-common (plus grub-pc-bin / grub-efi-amd64-bin)',
  'grub-mkstandalone': 'grub-common (plus grub-pc-bin / grub-efi-amd64-bin)',
  cpio: 'cpio',
};

export class HostToolError extends Error {
  constructor(
    message: string,
    readonly cmd: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'HostToolError';
  }
}

function tailLines(s: string, n: number): string {
  return s.trimEnd().split('\n').slice(-n).join('\n');
}

/** The real adapter: spawns the program (no shell), LC_ALL=C, output collected in memory. */
export function spawnHostTools(): HostTools {
  return {
    run(cmd, args, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 600_000;
      return new Promise<RunResult>((resolve, reject) => {
        const child = spawn(cmd, [...args], {
          cwd: opts.cwd,
          env: { ...process.env, LC_ALL: 'C', ...opts.env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on('data', (b: Buffer) => out.push(b));
        child.stderr.on('data', (b: Buffer) => err.push(b));
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.once('error', (e: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          const hint = PACKAGE_OF[cmd] ? `: apt-get install ${PACKAGE_OF[cmd]}` : '';
          const msg = e.code === 'ENOENT' ? `${cmd} not found on PATH${hint}` : `${cmd} could not start: ${e.message}`;
          reject(new HostToolError(msg, cmd, args, null, ''));
        });
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          const stdout = Buffer.concat(out).toString('utf8');
          const stderr = Buffer.concat(err).toString('utf8');
          if (code === 0) return resolve({ stdout, stderr });
          const why = signal
            ? `killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${timeoutMs} ms?)` : ''}`
            : `exit ${code}`;
          const detail = tailLines(stderr || stdout, 15);
          reject(
            new HostToolError(
              `${cmd} ${args.join(' ')} failed (${why})${detail ? `:\n${detail}` : ''}`,
              cmd,
              args,
              code,
              stderr,
            ),
          );
        });
      });
    },
  };
}
