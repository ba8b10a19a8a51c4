// Errors of the outside world in three kinds, and the one place that retries them. Adapters say
// what an error is (or leave it to `classify`); the engine and the runtime retry `retryable`
// ones with backoff, roll back or stop on `fatal` ones, and hand `user` ones to the person at
// the keyboard. Cloud SDK clients are built with their own retries off, so that nothing is
// retried twice over.
import type { Clock } from './ports.ts';

export type ErrorKind =
  /** Throttling, timeouts, a connection reset: the same call may well succeed in a moment. */
  | 'retryable'
  /** The call failed for good (no capacity, a fault the provider reported): undo or stop. */
  | 'fatal'
  /** Something only the user can mend: configuration, credentials, permissions. */
  | 'user';

export class FleetError extends Error {
  override name = 'FleetError';
  constructor(
    message: string,
    readonly kind: ErrorKind,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Node's codes for a connection that failed or stalled. */
const NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Error names (AWS and others) that mean "slow down". */
const THROTTLING = /^(Throttl|RequestLimitExceeded|TooManyRequests|SlowDown|RequestThrottled|PriorRequestNotComplete)/;

/**
 * What kind of error `err` is: a FleetError says so itself; otherwise throttling, 429/5xx
 * answers, timeouts and network failures are retryable, and the rest fatal.
 */
export function classify(err: unknown): ErrorKind {
  if (err instanceof FleetError) return err.kind;
  const e = err as {
    name?: string;
    code?: string;
    statusCode?: number;
    $retryable?: unknown;
    $metadata?: { httpStatusCode?: number };
    cause?: unknown;
  } | null;
  if (!e || typeof e !== 'object') return 'fatal';
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return 'retryable';
  if (e.$retryable) return 'retryable';
  if (e.name && THROTTLING.test(e.name)) return 'retryable';
  if (e.code && (NETWORK.has(e.code) || THROTTLING.test(e.code))) return 'retryable';
  const status = e.statusCode ?? e.$metadata?.httpStatusCode;
  if (status === 429 || status === 502 || status === 503 || status === 504) return 'retryable';
  if (status === 401 || status === 403) return 'user';
  if (e.cause && e.cause !== err) {
    const inner = classify(e.cause);
    if (inner !== 'fatal') return inner;
  }
  return 'fatal';
}

export interface RetryPolicy {
  /** Calls in all, the first included (default 6). */
  attempts: number;
  /** First wait; each later one doubles, with jitter (default 500 ms). */
  baseMs: number;
  /** Longest single wait (default 15 s). */
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseMs: 500, maxMs: 15_000 };

/**
 * Runs `fn`, again after a growing pause while it fails with a retryable error. The last error
 * is thrown as it was (a retryable one that never went away stays retryable).
 */
export async function retrying<T>(
  fn: () => Promise<T>,
  clock: Pick<Clock, 'sleep'>,
  opts: {
    policy?: Partial<RetryPolicy>;
    classify?: (err: unknown) => ErrorKind;
    onRetry?: (err: unknown, attempt: number, waitMs: number) => void;
  } = {},
): Promise<T> {
  const policy = { ...DEFAULT_RETRY, ...opts.policy };
  const kind = opts.classify ?? classify;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= policy.attempts || kind(err) !== 'retryable') throw err;
      const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
      const wait = Math.round(cap / 2 + Math.random() * (cap / 2));
      opts.onRetry?.(err, attempt, wait);
      await clock.sleep(wait);
    }
  }
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
