// The provider contract: publish once per identity, create → find → list → address/endpoint →
// destroy, a host found again by a fresh provider after a crash between create and the state
// write, destroy of a gone host succeeds, published images removed only when unused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuiltImage, ProvidedHost, Provider, PublishedImage } from '../ports.ts';
import type { HostRecord } from '../types.ts';

export interface ProviderHarness {
  /** A provider of the contract's own fleet; each call gives a new instance (as a new process would). */
  provider(): Promise<Provider>;
  /** A built image in the provider's boot format under `identity` (the same files for any identity is fine). */
  image(identity: string): Promise<BuiltImage>;
  /** Upload operations the peer has seen so far (requests or bytes): publish twice must not add to it. */
  uploads?(): Promise<number>;
  /** A name for a host of this fleet (the provider may require a prefix). */
  hostName(n: number): string;
  /** Longest a create or destroy may take here (default 60 s). */
  timeoutMs?: number;
  cleanup?(): Promise<void>;
}

/** The record the state would hold for a provided host. */
function record(h: ProvidedHost, image: string): HostRecord {
  return {
    name: h.name,
    image,
    generation: 1,
    status: 'pending',
    provider: h.ref,
    ...(h.address ? { address: h.address } : {}),
    createdAt: new Date().toISOString(),
  };
}

async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function providerContract(name: string, setup: () => Promise<ProviderHarness>): void {
  describe(`provider contract: ${name}`, () => {
    let h: ProviderHarness;
    let p: Provider;
    let published: PublishedImage;
    const made: HostRecord[] = [];
    const A = `sha256:${'a'.repeat(64)}`;
    const B = `sha256:${'b'.repeat(64)}`;
    const timeout = () => h.timeoutMs ?? 60_000;

    beforeAll(async () => {
      h = await setup();
      p = await h.provider();
    }, 600_000);
    afterAll(async () => {
      for (const host of made) await p?.destroy(host).catch(() => undefined);
      await p?.close();
      await h?.cleanup?.();
    }, 600_000);

    it('publishes an image once: a second publish finds the first instead of uploading again', async () => {
      expect(await p.findPublished(A)).toBeUndefined();
      const first = await p.publish(await h.image(A));
      expect(first.reused).toBe(false);
      expect(first.identity).toBe(A);
      expect(first.format).toBe(p.bootFormat);
      const before = await h.uploads?.();
      const again = await (await h.provider()).publish(await h.image(A));
      expect(again.reused).toBe(true);
      expect(again.ref).toEqual(first.ref);
      if (before !== undefined) expect(await h.uploads?.()).toBe(before);
      const found = await p.findPublished(A);
      expect(found?.ref).toEqual(first.ref);
      expect((await p.listPublished()).map((i) => i.identity)).toContain(A);
      published = { identity: first.identity, format: first.format, ref: first.ref };
    }, 600_000);

    it('create → find → list → address and endpoint → destroy; destroying a gone host succeeds', async () => {
      const name = h.hostName(1);
      expect(await p.find(name)).toBeUndefined();
      const host = await p.create({
        name,
        image: published,
        userdata: { hostname: { content: name } },
        token: 'contract-1',
      });
      const rec = record(host, A);
      made.push(rec);
      expect(host.name).toBe(name);
      const found = await p.find(name);
      expect(found?.name).toBe(name);
      expect(found?.image).toBe(A);
      expect(found?.ref).toEqual(host.ref);
      expect((await p.list()).map((x) => x.name)).toContain(name);
      const address = await eventually(() => p.address(rec), timeout());
      expect(address, 'the host gets an address').toBeTruthy();
      const ep = await p.endpoint({ ...rec, address: address as string }, 22);
      expect(ep?.port).toBeGreaterThan(0);
      await p.destroy(rec);
      expect(await p.find(name)).toBeUndefined();
      expect((await p.list()).map((x) => x.name)).not.toContain(name);
      await p.destroy(rec); // gone: still success
    }, 600_000);

    it('create is idempotent per token: asked again with the same token, it returns the same host', async () => {
      const name = h.hostName(4);
      const req = { name, image: published, userdata: {}, token: 'contract-4' };
      const first = await p.create(req);
      made.push(record(first, A));
      const again = await (await h.provider()).create(req);
      expect(again.name).toBe(name);
      expect(again.ref).toEqual(first.ref);
      expect((await p.list()).filter((x) => x.name === name)).toHaveLength(1);
      await p.destroy(record(first, A));
    }, 600_000);

    it('a host made just before a crash is found again by a new provider, with its image', async () => {
      const name = h.hostName(2);
      const host = await p.create({ name, image: published, userdata: {}, token: 'contract-2' });
      const rec = record(host, A);
      made.push(rec);
      const fresh = await h.provider();
      try {
        const found = await fresh.find(name);
        expect(found?.name).toBe(name);
        expect(found?.image).toBe(A);
        expect((await fresh.list()).find((x) => x.name === name)?.image).toBe(A);
        await fresh.destroy({ ...rec, provider: found?.ref ?? rec.provider ?? {} });
        expect(await fresh.find(name)).toBeUndefined();
      } finally {
        await fresh.close();
      }
    }, 600_000);

    it('never finds a host it did not make; destroy of a never-made host succeeds', async () => {
      const name = h.hostName(99);
      expect(await p.find(name)).toBeUndefined();
      await p.destroy({ name, image: A, generation: 1, status: 'live', createdAt: '' });
    }, 600_000);

    it('removes a published image only when no host needs it', async () => {
      const second = await p.publish(await h.image(B));
      expect(second.reused).toBe(false);
      const name = h.hostName(3);
      const host = await p.create({ name, image: second, userdata: {}, token: 'contract-3' });
      const rec = record(host, B);
      made.push(rec);
      expect(await p.unpublish(second)).toBe('in-use');
      expect((await p.findPublished(B))?.ref).toEqual(second.ref);
      await p.destroy(rec);
      expect(await p.unpublish(second)).toBe('removed');
      expect(await p.findPublished(B)).toBeUndefined();
      expect(await p.unpublish(second)).toBe('gone');
      expect((await p.listPublished()).map((i) => i.identity)).not.toContain(B);
    }, 600_000);
  });
}
