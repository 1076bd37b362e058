/** How long a client is told to wait before retrying while a database is unavailable. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/**
 * The database could not be reached or dropped the connection (down, restarting, failing over, out of
 * connections): nothing about the request was wrong, and the same request may succeed in a few seconds.
 * Subgraphs answer it as SERVICE_UNAVAILABLE; queue workers treat it as transient (retry, pause while it lasts).
 */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
  readonly retryAfterSeconds = DATABASE_RETRY_AFTER_SECONDS;

  constructor(
    /** The subgraph or database it belongs to, when known (e.g. `orders`). */
    readonly database: string | undefined,
    cause: unknown,
  ) {
    super(
      `${database ? `the ${database} database` : 'the database'} is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }

  /** What a client is told: no host names or driver details, and what to do about it. */
  get clientMessage(): string {
    return `The ${this.database ? `${this.database} ` : ''}database is unavailable; retry in a few seconds`;
  }
}

/**
 * SQLSTATEs of a lost or refused connection: class 08 (connection exception), admin shutdown, crash shutdown,
 * cannot connect now (starting up, shutting down, in recovery), too many connections.
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** Node socket and resolver errors of a server that is gone, unreachable or not (yet) resolvable. */
const UNAVAILABLE_SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** node-postgres and pg-pool report these without a code. */
const UNAVAILABLE_MESSAGES = [
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
];

/**
 * Whether an error (or one of its causes) means the database connection failed rather than the statement: a
 * retry on a new connection may succeed. Constraint violations, syntax errors and the like are not.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; typeof current === 'object' && current !== null && depth < 5; depth++) {
    if (current instanceof DatabaseUnavailableError) return true;
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string') {
      if (code.startsWith('08') && code.length === 5) return true;
      if (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_SOCKET_CODES.has(code)) return true;
    }
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.includes(message)) return true;
    // Node's connect to `localhost` tries every address and reports an AggregateError of their failures.
    if (current instanceof AggregateError && current.errors.some((inner) => isDatabaseUnavailable(inner))) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** The DatabaseUnavailableError an error is or wraps (a GraphQL error's originalError, a cause), if any. */
export function databaseUnavailableCause(error: unknown): DatabaseUnavailableError | undefined {
  for (let current = error, depth = 0; typeof current === 'object' && current !== null && depth < 5; depth++) {
    if (current instanceof DatabaseUnavailableError) return current;
    const next = current as { originalError?: unknown; cause?: unknown };
    current = next.originalError ?? next.cause;
  }
  return undefined;
}
