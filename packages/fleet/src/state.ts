// The fleet's state as a JSON file beside the fleet.yml (state.backend: file): replaced
// atomically (temp file + rename) on every change, and locked while a command changes it.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Fleet } from '@stele/manifest';
import { withLock, writeJsonAtomic } from '@stele/oci';
import type { StateStore } from './ports.ts';
import { emptyState, type FleetState } from './types.ts';

export class StateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateError';
  }
}

/** Where a fleet's state file is: `state.path`, or `.stele/state/<name>.json`, beside the fleet.yml. */
export function statePath(fleet: Fleet, fleetFile: string): string {
  const dir = dirname(resolve(fleetFile));
  if (fleet.state?.backend === 'file') return resolve(dir, fleet.state.path);
  if (fleet.state?.backend === 's3') throw new StateError('state.backend s3 is not supported yet: use backend: file');
  return join(dir, '.stele', 'state', `${fleet.name}.json`);
}

export class FileStateStore implements StateStore {
  constructor(
    readonly path: string,
    private readonly fleet: string,
  ) {}

  async load(): Promise<FleetState> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState(this.fleet);
      throw new StateError(`cannot read the state ${this.path}: ${(err as Error).message}`);
    }
    let state: FleetState;
    try {
      state = JSON.parse(text) as FleetState;
    } catch (err) {
      throw new StateError(`the state ${this.path} is not JSON: ${(err as Error).message}`);
    }
    if (state.version !== 1 || !Array.isArray(state.hosts)) {
      throw new StateError(`the state ${this.path} has an unknown format (version ${String(state.version)})`);
    }
    if (state.fleet !== this.fleet) {
      throw new StateError(`the state ${this.path} belongs to fleet '${state.fleet}', not '${this.fleet}'`);
    }
    return state;
  }

  save(state: FleetState): Promise<void> {
    return writeJsonAtomic(this.path, state);
  }

  async locked<T>(fn: () => Promise<T>): Promise<T> {
    await mkdir(dirname(this.path), { recursive: true });
    // Fail fast when another command holds it; a rollout may hold it for hours (a dead
    // holder's lock is broken at once: its pid is gone).
    try {
      return await withLock(`${this.path}.lock`, fn, { timeoutMs: 3_000, staleMs: 7 * 24 * 3_600_000 });
    } catch (err) {
      if (/timed out|timeout/i.test((err as Error).message)) {
        throw new StateError(`another stele command is changing this fleet (lock ${this.path}.lock)`);
      }
      throw err;
    }
  }
}
