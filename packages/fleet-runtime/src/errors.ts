// The one error the runtime hands to the CLI for anything the user can act on: a bad fleet.yml,
// a secret that can't be read, a provider that answered with an error, a lock held by another
// command. Its message is ready to print. Anything else reaching the CLI is a bug in Stele.

export class RuntimeError extends Error {
  override name = 'RuntimeError';
}

/** Errors that mean a bug in Stele (not the world's or the user's doing). */
export function isBug(err: unknown): boolean {
  return (
    err instanceof TypeError || err instanceof ReferenceError || err instanceof RangeError || err instanceof SyntaxError
  );
}
