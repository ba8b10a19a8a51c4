// The real peers of the end-to-end suites. Each start* function picks a free loopback port and a
// temp dir of its own, waits until the peer answers, and returns a handle whose stop() always
// cleans up (call it in afterAll/finally). Recipes and measured facts: ../shared/PEERS.md.
export * from './process.ts';
