// The real peers of the end-to-end suites. Each start* function picks a free loopback port and a
// temp dir of its own, waits until the peer answers, and returns a handle whose stop() always
// cleans up (call it in afterAll/finally). Recipes and measured facts: ../shared/PEERS.md.

export * from './dockerd.ts';
export * from './git.ts';
export * from './initramfs.ts';
export * from './moto.ts';
export * from './netns.ts';
export * from './process.ts';
export * from './qemu.ts';
export * from './registry.ts';
export * from './ssh.ts';
export * from './vcsim.ts';
