import { GraphQLError } from 'graphql';
import {
  InvalidTokenError,
  createTokenVerifier,
  signIdentity,
  type Identity,
  type JwtVerifierConfig,
  type Logger,
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
}

export const INVALID_TOKEN_MESSAGE = 'The access token is invalid or has expired; log in again.';

export function invalidToken(): GraphQLError {
  return new GraphQLError(INVALID_TOKEN_MESSAGE, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
}

const BEARER = /^Bearer\s+(\S+)$/i;

/**
 * Checks `Authorization: Bearer <jwt>` (HTTP) or `connectionParams.authorization` (graphql-ws).
 * No credentials: an anonymous caller. Credentials that do not verify: UNAUTHENTICATED, never anonymous,
 * so a client with a stale token learns it must log in again.
 */
export function createAuthenticator(config: RouterAuthConfig, log: Logger): (authorization: unknown) => Promise<Caller> {
  const verify = createTokenVerifier(config.jwt);
  const callerOf = (identity: Identity | null): Caller => ({
    identity,
    identityFor: (subgraph) => (identity ? signIdentity(identity, subgraph, config.identitySecret) : undefined),
  });
  const anonymous = callerOf(null);
  return async (authorization) => {
    if (authorization === undefined || authorization === null || authorization === '') return anonymous;
    const token = typeof authorization === 'string' ? BEARER.exec(authorization.trim())?.[1] : undefined;
    if (!token) throw invalidToken();
    try {
      return callerOf(await verify(token));
    } catch (error) {
      if (!(error instanceof InvalidTokenError)) throw error;
      log.debug({ reason: error.message }, 'refused an access token');
      throw invalidToken();
    }
  };
}
