import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gitRepo } from '@stele/test-peers';
import { describe, expect, it } from 'vitest';
import { type Command, dispatch, editDistance, nearest, UsageError, UserError } from '../src/cli.ts';
import { main, root, VERSION } from '../src/main.ts';
import { fakeIo } from './io.ts';

const bin = fileURLToPath(new URL('../bin/stele.js', import.meta.url));

describe('stele --help', () => {
  it('lists every command with its summary and shows examples', async () => {
    const io = fakeIo();
    expect(await main(['--help'], io)).toBe(0);
    for (const cmd of root.subcommands ?? []) {
      expect(io.out()).toContain(cmd.name);
      expect(io.out()).toContain(cmd.summary);
    }
    expect(io.out()).toMatch(/Examples:\n {2}stele /);
  });

  it('every command has a one-line summary and at least one example that names it', () => {
    for (const cmd of root.subcommands ?? []) {
      expect(cmd.summary).not.toContain('\n');
      expect(cmd.examples.length).toBeGreaterThan(0);
      // An example may set environment variables first: `COSIGN_PASSWORD=… stele sign …`.
      for (const e of cmd.examples)
        expect(e.replace(/^(\w+=\S*\s+)*/, '')).toMatch(new RegExp(`^stele ${cmd.name}\\b`));
    }
  });

  it('`help CMD` and `CMD --help` print the same text', async () => {
    const a = fakeIo();
    const b = fakeIo();
    await main(['help', 'doctor'], a);
    await main(['doctor', '--help'], b);
    expect(a.out()).toBe(b.out());
    expect(a.out()).toContain('Usage: stele doctor');
  });
});

describe('usage errors', () => {
  it('an unknown command names the nearest one and exits 2', async () => {
    const io = fakeIo();
    expect(await main(['doctr'], io)).toBe(2);
    expect(io.err()).toBe("stele: unknown command 'doctr' (did you mean doctor?)\n");
  });

  it('an unknown flag names the nearest one and exits 2', async () => {
    const io = fakeIo();
    expect(await main(['doctor', '--jsn'], io)).toBe(2);
    expect(io.err()).toBe('stele doctor: unknown flag --jsn (did you mean --json?)\n');
  });

  it('a far-off name gets a pointer to --help instead of a wild guess', async () => {
    const io = fakeIo();
    expect(await main(['xyzzyplugh'], io)).toBe(2);
    expect(io.err()).toContain("see 'stele --help'");
    expect(io.err().split('\n').filter(Boolean)).toHaveLength(1);
  });

  it('too many positionals and missing flag values are usage errors', async () => {
    const cmd: Command = {
      name: 'x',
      summary: 's',
      usage: 'FILE',
      examples: [],
      positionals: { min: 1, max: 1 },
      options: { out: { type: 'string', description: 'o' } },
      run: async () => 0,
    };
    const rootCmd: Command = { name: 'stele', summary: 's', examples: [], subcommands: [cmd] };
    await expect(dispatch(rootCmd, ['x', 'a', 'b'], fakeIo())).rejects.toThrow("unexpected argument 'b'");
    await expect(dispatch(rootCmd, ['x'], fakeIo())).rejects.toThrow('missing argument: FILE');
    await expect(dispatch(rootCmd, ['x', 'a', '--out'], fakeIo())).rejects.toThrow('--out needs a value');
    await expect(dispatch(rootCmd, ['x', 'a', '--out', 'o'], fakeIo())).resolves.toBe(0);
  });

  it('an unexpected exception becomes one line, exit 1, no stack', async () => {
    const boom: Command = {
      name: 'boom',
      summary: 's',
      examples: [],
      run: async () => {
        throw new Error('kaput');
      },
    };
    (root.subcommands as Command[]).push(boom);
    try {
      const io = fakeIo();
      expect(await main(['boom'], io)).toBe(1);
      expect(io.err()).toBe('stele: internal error: kaput\n');
    } finally {
      (root.subcommands as Command[]).pop();
    }
  });
});

describe('what main prints for a failure', () => {
  async function failWith(err: Error) {
    const cmd: Command = {
      name: 'fail',
      summary: 's',
      examples: [],
      run: async () => {
        throw err;
      },
    };
    (root.subcommands as Command[]).push(cmd);
    try {
      const io = fakeIo();
      const code = await main(['fail'], io);
      return { code, err: io.err() };
    } finally {
      (root.subcommands as Command[]).pop();
    }
  }

  it('every line of a several-line message starts with stele:', async () => {
    const r = await failWith(new UserError('m.yml:1:1: first\nm.yml:2:1: second'));
    expect(r).toEqual({ code: 1, err: 'stele: m.yml:1:1: first\nstele: m.yml:2:1: second\n' });
    const internal = await failWith(new Error('one\ntwo'));
    expect(internal.err).toBe('stele: internal error: one\nstele: two\n');
  });

  it('control characters and bidi overrides in a message are escaped', async () => {
    const r = await failWith(new UserError('name \u001b]0;title\u0007\u001b[2J \u202eevil'));
    expect(r.err).toBe('stele: name \\u001b]0;title\\u0007\\u001b[2J \\u202eevil\n');
    const usage = await failWith(new UsageError('stele x: unknown flag --\u001b[31m'));
    expect(usage).toEqual({ code: 2, err: 'stele x: unknown flag --\\u001b[31m\n' });
  });
});

describe("the user's mistakes are no internal errors", () => {
  it('a DOCKER_HOST that names no engine: one line naming it, exit 1', async () => {
    const repo = gitRepo('stele-cli-dockerhost-');
    try {
      repo.write('pkg/hello/build.yml', 'image: hello\narches: [amd64]\n');
      repo.write('pkg/hello/Dockerfile', 'FROM scratch\nCOPY msg /msg\n');
      repo.write('pkg/hello/msg', 'hello\n');
      repo.commit();
      const io = { ...fakeIo({ DOCKER_HOST: 'ftp://engine', STELE_CACHE: `${repo.root}/.store` }), cwd: repo.root };
      expect(await main(['pkg', 'build', '--no-registry', 'pkg/hello'], io)).toBe(1);
      expect(io.err()).toBe(
        "stele: bad Docker endpoint 'ftp://engine': want unix:///path, tcp://host:port or https://host:port\n",
      );
    } finally {
      rmSync(repo.root, { recursive: true, force: true });
    }
  });
});

describe('nearest', () => {
  it('counts transpositions as one edit', () => {
    expect(editDistance('push', 'psuh')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
  });
  it('prefers prefixes and refuses distant names', () => {
    expect(nearest('val', ['validate', 'verify'])).toBe('validate');
    expect(nearest('bulid', ['build', 'pull'])).toBe('build');
    expect(nearest('zzzzzz', ['build', 'pull'])).toBeUndefined();
  });
});

describe('the installed bin', () => {
  it('prints the version from package.json', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [bin, '--version']);
    expect(stdout).toBe(`stele ${VERSION}\n`);
  });
  it('exits 2 on an unknown command', async () => {
    const err = await promisify(execFile)(process.execPath, [bin, 'nope-nope']).catch((e: { code: number }) => e);
    expect((err as { code: number }).code).toBe(2);
  });
});
