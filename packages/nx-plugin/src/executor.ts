/**
 * Nx executors. `build` runs the configured Stele command for a package build, a package push
 * or an OS image build, then insists on a valid descriptor whose digest is in the store — the
 * same check `hooks.ts` applies to cache hits. `fleet` runs `stele fleet plan|rollout`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { missingBuildContent, readBuildDescriptor } from '@stele/oci/build-descriptor';
import { resolveStoreDir } from './options.ts';

export interface BuildOptions {
  kind: 'package' | 'push' | 'os';
  file: string;
  dir: string;
  descriptor: string;
  outDir?: string;
  formats?: string[];
  command: string;
  storeDir?: string;
}

export interface FleetOptions {
  action: 'plan' | 'rollout';
  file: string;
  dir: string;
  command: string;
}

/** The part of Nx's ExecutorContext the executors use. */
export interface Context {
  root: string;
  projectName?: string;
}

export interface Result {
  success: boolean;
}

export function expandCommand(template: string, vars: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? shellQuote(vars[k] ?? '') : m));
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

interface Run {
  code: number;
  stderr: string;
}

function run(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, { cwd, env, shell: true, stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => {
      process.stderr.write(b);
      if (stderr.length < 64 * 1024) stderr += b.toString();
    });
    child.on('error', (e) => resolve({ code: 127, stderr: e.message }));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stderr }));
  });
}

function commandEnv(root: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  const bin = join(root, 'node_modules', '.bin');
  return { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`, ...extra };
}

/** The CLI exits 2 with "unknown command" for commands other issues have not added yet. */
function notAvailable(r: Run, what: string): boolean {
  if (r.code === 2 && /unknown command/.test(r.stderr)) {
    console.error(`stele: '${what}' is not available yet in this version of the stele CLI.`);
    return true;
  }
  return false;
}

const WHAT: Record<BuildOptions['kind'], string> = {
  package: 'stele pkg build',
  push: 'stele pkg push',
  os: 'stele build',
};

export async function buildExecutor(options: BuildOptions, context: Context): Promise<Result> {
  const root = context.root;
  const descriptor = join(root, options.descriptor);
  const outDir = dirname(descriptor);
  const storeDir = resolveStoreDir(options.storeDir, root);
  // start clean so a failing command cannot leave the previous descriptor behind as if it were new
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const vars = {
    file: options.file,
    dir: options.dir,
    descriptor: options.descriptor,
    outDir: options.outDir ?? dirname(options.descriptor),
    formats: (options.formats ?? []).join(','),
    project: context.projectName ?? '',
  };
  const env = commandEnv(root, {
    STELE_PROJECT: vars.project,
    STELE_FILE: vars.file,
    STELE_DESCRIPTOR: vars.descriptor,
    STELE_OUT_DIR: vars.outDir,
    STELE_FORMATS: vars.formats,
    STELE_CACHE: storeDir,
  });
  const r = await run(expandCommand(options.command, vars), root, env);
  if (r.code !== 0) {
    if (!notAvailable(r, WHAT[options.kind])) console.error(`stele: ${WHAT[options.kind]} failed (exit ${r.code})`);
    return { success: false };
  }
  const parsed = readBuildDescriptor(descriptor);
  if (!parsed) {
    console.error(`stele: ${WHAT[options.kind]} succeeded but wrote no descriptor at ${options.descriptor}`);
    return { success: false };
  }
  if (!parsed.ok) {
    console.error(`stele: ${options.descriptor}: ${parsed.message}`);
    return { success: false };
  }
  const missing = missingBuildContent(parsed.value, outDir, storeDir);
  if (missing) {
    console.error(`stele: ${WHAT[options.kind]} reported ${parsed.value.digest} but ${missing}`);
    return { success: false };
  }
  console.log(`${context.projectName ?? options.file}: ${parsed.value.digest} (${parsed.value.size} bytes)`);
  return { success: true };
}

export async function fleetExecutor(options: FleetOptions, context: Context): Promise<Result> {
  const vars = { file: options.file, dir: options.dir, project: context.projectName ?? '' };
  const r = await run(expandCommand(options.command, vars), context.root, commandEnv(context.root, {}));
  if (r.code !== 0) {
    if (!notAvailable(r, `stele fleet ${options.action}`)) {
      console.error(`stele: fleet ${options.action} failed (exit ${r.code})`);
    }
    return { success: false };
  }
  return { success: true };
}
