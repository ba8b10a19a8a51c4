// The one error the runtime hands to the CLI for anything the user can act on: a bad fleet.yml,
// a secret that can't be read, a provider that answered with an error, a lock held by another
// command. Its message is ready to print. Anything else reaching the CLI is a bug in Stele.
import { PlanError, RolloutError, RolloutInterrupted, StateError } from '@stele/fleet';

export class RuntimeError extends Error {
  override name = 'RuntimeError';
}

/**
 * Errors the fleet libraries report for a person to act on (their messages are ready to print):
 * the runtime's, the state's, the planner's and the engine's.
 */
export function isReported(err: unknown): err is Error {
  return (
    err instanceof RuntimeError ||
    err instanceof StateError ||
    err instanceof PlanError ||
    err instanceof RolloutError ||
    err instanceof RolloutInterrupted
  );
}

/** Errors that mean a bug in Stele (not the world's or the user's doing). */
export function isBug(err: unknown): boolean {
  return (
    err instanceof TypeError || err instanceof ReferenceError || err instanceof RangeError || err instanceof SyntaxError
  );
}
