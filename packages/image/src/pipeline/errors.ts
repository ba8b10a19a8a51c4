/** A build failure the user can act on; the CLI prints the message alone and exits 1. */
export class BuildError extends Error {}
