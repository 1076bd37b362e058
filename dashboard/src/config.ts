import {
  readJwtVerifierConfig,
  readQueueConfig,
  readServiceConfig,
  readUrl,
  type JwtVerifierConfig,
  type QueueConfig,
  type ServiceConfig,
} from '@shop/common';

export interface DashboardConfig extends ServiceConfig {
  queues: QueueConfig;
  /** How access tokens are verified, as the router verifies them: JWT_SECRET (HS256) or JWT_JWKS_URL, JWT_ISSUER, JWT_AUDIENCE. */
  jwt: JwtVerifierConfig;
  /** The shop's GraphQL endpoint, whose `login` mutation the login form calls (ROUTER_URL). */
  routerUrl: string;
  /** The session cookie is `Secure` (HTTPS only) in production. */
  secureCookie: boolean;
}

export const DEFAULT_ROUTER_URL = 'http://127.0.0.1:4000/graphql';

/** The router's address as the web app's server takes it (`http://router:4000`) also works: `/graphql` is added. */
function graphqlUrl(value: string): string {
  const url = new URL(value);
  return url.pathname === '/' && !url.search ? new URL('/graphql', url).toString() : value;
}

/** Parsed once at start; production without a way to verify tokens stops with a message naming the variables. */
export function readDashboardConfig(env: NodeJS.ProcessEnv = process.env): DashboardConfig {
  // Operators only: bound to loopback unless HOST says otherwise.
  const service = readServiceConfig({ HOST: '127.0.0.1', ...env }, 4005);
  return {
    ...service,
    queues: readQueueConfig(env),
    jwt: readJwtVerifierConfig(env, service.production),
    routerUrl: graphqlUrl(readUrl(env, 'ROUTER_URL', ['http:', 'https:']) ?? DEFAULT_ROUTER_URL),
    secureCookie: service.production,
  };
}
