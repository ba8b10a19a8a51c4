import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseJson } from '../json.ts';

/** Credentials that cannot be read (Docker's config.json, a credential helper). Never quotes a secret. */
export class CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsError';
  }
}

/** Basic credentials, or an identity (refresh) token for a bearer token service. */
export type Credentials = { username: string; password: string } | { identityToken: string; username?: string };

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header into its challenges, e.g.
 * `Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"`.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let current: Challenge | undefined;
  let i = 0;
  const n = header.length;
  const skip = (chars: string) => {
    while (i < n && chars.includes(header[i] as string)) i++;
  };
  while (i < n) {
    skip(' \t,');
    const start = i;
    while (i < n && !' \t,='.includes(header[i] as string)) i++;
    const token = header.slice(start, i);
    if (!token) break;
    skip(' \t');
    if (header[i] === '=') {
      i++;
      skip(' \t');
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\') i++;
          value += header[i] ?? '';
          i++;
        }
        i++;
      } else {
        const vs = i;
        while (i < n && header[i] !== ',') i++;
        value = header.slice(vs, i).trim();
      }
      if (current) current.params[token.toLowerCase()] = value;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

export interface CredentialOptions {
  env?: NodeJS.ProcessEnv;
  /** Runs `docker-credential-<name> get`; tests pass a fake. */
  runHelper?: (helper: string, serverUrl: string) => Promise<string>;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

function configKeys(host: string): string[] {
  const keys = [host, `https://${host}`, `http://${host}`, `https://${host}/v1/`, `https://${host}/v2/`];
  if (host === 'docker.io' || host === 'registry-1.docker.io' || host === 'index.docker.io') {
    keys.push('https://index.docker.io/v1/', 'index.docker.io', 'docker.io');
  }
  return keys;
}

export function runCredentialHelper(helper: string, serverUrl: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, ['get'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('error', (e) =>
      reject(new CredentialsError(`credential helper docker-credential-${helper}: ${e.message}`)),
    );
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else {
        const msg = (out || err).trim();
        // Helpers say "credentials not found in native keychain" when they have nothing.
        if (/not found/i.test(msg)) resolve('');
        else reject(new CredentialsError(`credential helper docker-credential-${helper} failed (exit ${code})`));
      }
    });
    child.stdin.end(serverUrl);
  });
}

/**
 * Credentials for `host`, looked up in order: `STELE_REGISTRY_USERNAME` / `STELE_REGISTRY_PASSWORD`
 * (limited to `STELE_REGISTRY_HOST` when that is set), then Docker's config
 * (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`): `credHelpers`, `auths`, `credsStore`.
 * Undefined means anonymous.
 */
export async function lookupCredentials(host: string, opts: CredentialOptions = {}): Promise<Credentials | undefined> {
  const env = opts.env ?? process.env;
  if (env.STELE_REGISTRY_USERNAME && env.STELE_REGISTRY_PASSWORD !== undefined) {
    if (!env.STELE_REGISTRY_HOST || env.STELE_REGISTRY_HOST === host) {
      return { username: env.STELE_REGISTRY_USERNAME, password: env.STELE_REGISTRY_PASSWORD };
    }
  }
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  const file = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CredentialsError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  // The file holds passwords: a message about it says where it is wrong, never what it says.
  let config: DockerConfig;
  try {
    config = parseJson(text) as DockerConfig;
  } catch (err) {
    throw new CredentialsError(`${file} is ${(err as Error).message}`);
  }
  if (!config || typeof config !== 'object' || Array.isArray(config)) {
    throw new CredentialsError(`${file} is not a JSON object`);
  }
  const runHelper = opts.runHelper ?? runCredentialHelper;
  const keys = configKeys(host);
  const field = (v: unknown, where: string): string | undefined => {
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new CredentialsError(`${file}: ${where} is not a string`);
    return v;
  };
  const helper = keys.map((k) => field(config.credHelpers?.[k], `credHelpers["${k}"]`)).find(Boolean);
  if (helper) return fromHelper(await runHelper(helper, host), helper);
  for (const k of keys) {
    const a = config.auths?.[k];
    if (!a) continue;
    if (typeof a !== 'object') throw new CredentialsError(`${file}: auths["${k}"] is not an object`);
    const token = field(a.identitytoken, `auths["${k}"].identitytoken`);
    const username = field(a.username, `auths["${k}"].username`);
    if (token) return { identityToken: token, ...(username ? { username } : {}) };
    const auth = field(a.auth, `auths["${k}"].auth`);
    if (auth) {
      const decoded = Buffer.from(auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i < 0) throw new CredentialsError(`${file}: auths["${k}"].auth is not base64 of user:password`);
      return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
    }
    const password = a.password === '' ? '' : field(a.password, `auths["${k}"].password`);
    if (username && password !== undefined) return { username, password };
  }
  const store = field(config.credsStore, 'credsStore');
  if (store) return fromHelper(await runHelper(store, host), store);
  return undefined;
}

function fromHelper(out: string, helper: string): Credentials | undefined {
  if (!out.trim()) return undefined;
  let parsed: { Username?: string; Secret?: string };
  try {
    parsed = JSON.parse(out) as { Username?: string; Secret?: string };
  } catch {
    throw new CredentialsError(`credential helper docker-credential-${helper} printed something that is not JSON`);
  }
  if (!parsed.Secret) return undefined;
  if (parsed.Username === '<token>') return { identityToken: parsed.Secret };
  return { username: parsed.Username ?? '', password: parsed.Secret };
}

export function basicHeader(c: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
