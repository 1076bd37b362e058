import { GraphQLError } from 'graphql';
import {
  InvalidTokenError,
  createVerifiedTokenReader,
  signIdentity,
  type Identity,
  type JwtVerifierConfig,
  type Logger,
  type VerifiedToken,
} from '@shop/common';

export interface RouterAuthConfig {
  jwt: JwtVerifierConfig;
  /** Key of the identity the router signs for the subgraphs (IDENTITY_SECRET). */
  identitySecret: string;
}

/** What the router knows about a request's caller; `identityFor` signs it for one subgraph. */
export interface Caller {
  identity: Identity | null;
  identityFor(subgraph: string): string | undefined;
  /** When the caller's access token expires (ms since the epoch); undefined when anonymous. */
  expiresAtMs?: number;
}

export const INVALID_TOKEN_MESSAGE = 'The access token is invalid or has expired; log in again.';

export function invalidToken(): GraphQLError {
  return new GraphQLError(INVALID_TOKEN_MESSAGE, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
}

const BEARER = /^Bearer\s+(\S+)$/i;

/** How many verified tokens the router remembers, and for how long at most (never past a token's own `exp`). */
export const VERIFIED_TOKENS_MAX = 10_000;
export const VERIFIED_TOKEN_MAX_AGE_MS = 60_000;

/**
 * Tokens that verified, by their exact text, least recently used first: checking a JWT's signature on every
 * request was a few percent of the router's CPU per request, for the same few tokens over and over. An entry
 * is used only while the token is unexpired (jose's own test: the clock below `exp` seconds) and at most
 * `maxAgeMs` after it was verified; failures are never remembered, so a refused token is checked again.
 */
export class VerifiedTokenCache<T> {
  private readonly entries = new Map<string, { value: T; validUntilMs: number }>();

  constructor(
    private readonly maxEntries = VERIFIED_TOKENS_MAX,
    private readonly maxAgeMs = VERIFIED_TOKEN_MAX_AGE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(token: string): T | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    this.entries.delete(token);
    if (this.now() >= entry.validUntilMs) return undefined;
    // Re-inserted: the Map's order is the recency order.
    this.entries.set(token, entry);
    return entry.value;
  }

  /** Remembers a verified token whose `exp` claim is `exp` (seconds since the epoch). */
  set(token: string, exp: number, value: T): void {
    const validUntilMs = Math.min(exp * 1000, this.now() + this.maxAgeMs);
    if (!(validUntilMs > this.now())) return;
    this.entries.delete(token);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { value, validUntilMs });
  }
}

/**
 * Checks `Authorization: Bearer <jwt>` (HTTP) or `connectionParams.authorization` (graphql-ws).
 * No credentials: an anonymous caller. Credentials that do not verify: UNAUTHENTICATED, never anonymous,
 * so a client with a stale token learns it must log in again.
 */
export function createAuthenticator(
  config: RouterAuthConfig,
  log: Logger,
  verify: (token: string) => Promise<VerifiedToken> = createVerifiedTokenReader(config.jwt),
  verified: VerifiedTokenCache<Caller> = new VerifiedTokenCache(),
): (authorization: unknown, requestLog?: Logger) => Promise<Caller> {
  const callerOf = (identity: Identity | null, exp?: number): Caller => ({
    identity,
    identityFor: (subgraph) => (identity ? signIdentity(identity, subgraph, config.identitySecret) : undefined),
    ...(exp === undefined ? {} : { expiresAtMs: exp * 1000 }),
  });
  const anonymous = callerOf(null);
  return async (authorization, requestLog = log) => {
    if (authorization === undefined || authorization === null || authorization === '') return anonymous;
    const token = typeof authorization === 'string' ? BEARER.exec(authorization.trim())?.[1] : undefined;
    if (!token) throw invalidToken();
    const known = verified.get(token);
    if (known) return known;
    try {
      const { identity, exp } = await verify(token);
      const caller = callerOf(identity, exp);
      verified.set(token, exp, caller);
      return caller;
    } catch (error) {
      if (!(error instanceof InvalidTokenError)) throw error;
      requestLog.debug({ reason: error.message }, 'refused an access token');
      throw invalidToken();
    }
  };
}
