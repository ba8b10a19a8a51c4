// The orchestrator contract: join data in LinuxKit's user-data format, a node that joined with it
// becomes ready, drain moves it out of work, remove forgets it (and succeeds when it is unknown),
// and rotating the join secret makes the old join data useless.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Orchestrator } from '../ports.ts';
import type { HostRecord, UserData } from '../types.ts';

export interface OrchestratorHarness {
  orchestrator(): Promise<Orchestrator>;
  /** Makes a real node named `name` join with `userdata` (the orchestrator's join data). */
  join(name: string, userdata: UserData): Promise<void>;
  /** Whether the peer itself (not the adapter) shows the node as taking no new work. */
  drained(name: string): Promise<boolean>;
  /** Whether the peer still knows a node named `name`. */
  known(name: string): Promise<boolean>;
  /** Whether join data still admits a new node (after a rotation the old data must not). */
  admits(userdata: UserData): Promise<boolean>;
  /** The host name the harness's node gets. */
  hostName: string;
  /** Longest a join may take here (default 120 s). */
  timeoutMs?: number;
  cleanup?(): Promise<void>;
}

function leaves(u: UserData, path = ''): [string, unknown][] {
  return Object.entries(u).flatMap(([k, v]) =>
    'entries' in v ? leaves(v.entries, `${path}${k}/`) : [[`${path}${k}`, (v as { content: unknown }).content]],
  ) as [string, unknown][];
}

export function orchestratorContract(name: string, setup: () => Promise<OrchestratorHarness>): void {
  describe(`orchestrator contract: ${name}`, () => {
    let h: OrchestratorHarness;
    let o: Orchestrator;
    let host: HostRecord;

    beforeAll(async () => {
      h = await setup();
      o = await h.orchestrator();
      host = { name: h.hostName, image: 'sha256:contract', generation: 1, status: 'pending', createdAt: '' };
    }, 600_000);
    afterAll(async () => {
      await o?.close();
      await h?.cleanup?.();
    }, 600_000);

    it('gives join data as LinuxKit user-data entries; an unknown host is not ready and is no error', async () => {
      const data = await o.joinUserdata();
      const files = leaves(data);
      expect(files.length).toBeGreaterThan(0);
      for (const [path, content] of files) expect(typeof content, path).toBe('string');
      const r = await o.ready({ ...host, name: `${h.hostName}-never` });
      expect(r.ok).toBe(false);
      expect(r.detail).toBeTruthy();
      // Unknown hosts: drain and remove succeed without doing anything.
      await o.drain({ ...host, name: `${h.hostName}-never` });
      await o.remove({ ...host, name: `${h.hostName}-never` });
    }, 600_000);

    it('a node that joins with the join data becomes ready; drain takes it out of work; remove forgets it', async () => {
      await h.join(h.hostName, await o.joinUserdata());
      const deadline = Date.now() + (h.timeoutMs ?? 120_000);
      let r = await o.ready(host);
      while (!r.ok && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 1000));
        r = await o.ready(host);
      }
      expect(r.ok, r.detail).toBe(true);
      await o.drain(host);
      expect(await h.drained(h.hostName)).toBe(true);
      expect((await o.ready(host)).ok).toBe(false);
      await o.remove(host);
      expect(await h.known(h.hostName)).toBe(false);
      await o.remove(host); // already gone
    }, 600_000);

    it('rotating the join secret makes the old join data useless', async () => {
      const before = await o.joinUserdata();
      expect(await h.admits(before)).toBe(true);
      await o.rotateJoinSecret();
      const after = await o.joinUserdata();
      expect(after).not.toEqual(before);
      expect(await h.admits(before)).toBe(false);
      expect(await h.admits(after)).toBe(true);
    }, 600_000);

    it('close lets go and may be called twice', async () => {
      const other = await h.orchestrator();
      await other.joinUserdata();
      await other.close();
      await other.close();
    }, 600_000);
  });
}
