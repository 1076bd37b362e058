import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, readBool, readInt, readOptional, readPort, readUrl, readServiceConfig, readString, type ServiceConfig } from '@shop/common';
import type { OperationLimits } from './limits.js';
import { readIdentitySecret, readJwtVerifierConfig } from '@shop/common';
import type { RouterAuthConfig } from './auth.js';
import type { ResilienceConfig } from './resilience.js';
import type { EntityCacheConfig } from './entity-cache.js';
import type { LoginThrottleConfig } from './login-throttle.js';

export interface RouterConfig extends ServiceConfig {
  /** Prometheus metrics are served on a listener of their own (METRICS_PORT, 0 for any free port), never the client port. */
  metricsPort: number;
  /** Where that listener binds (METRICS_HOST): loopback by default, so only the machine (or a sidecar) scrapes it. */
  metricsHost: string;
  /** Composed supergraph schema file; watched for changes. */
  supergraphPath: string;
  /** Routing URLs that replace the supergraph's, by subgraph name (from `<NAME>_SUBGRAPH_URL`). */
  subgraphUrls: Record<string, string>;
  /** How long a subgraph fetch may take. */
  subgraphTimeoutMs: number;
  /** Per-subgraph deadlines, circuit breakers, retries and deduplication of subgraph fetches. */
  resilience: ResilienceConfig;
  /** Redis for state shared by router replicas (the persisted-query cache); in-process when absent. */
  redisUrl: string | undefined;
  /** Key prefix in that Redis. */
  keyPrefix: string;
  /** Requests per client per window (needs Redis; 0 turns it off). */
  rateLimit: { max: number; windowMs: number; trustProxy: boolean };
  /** Failed logins per account and per address before exponential lock-outs (needs Redis). */
  loginThrottle: LoginThrottleConfig;
  /** Depth, cost, alias, root field and token limits of every operation (HTTP and WebSocket). */
  limits: OperationLimits;
  /** Safelist mode: a persisted query manifest whose operations are the only ones the router runs. */
  safelistPath: string | undefined;
  /** The `_entities` cache in memory, checked against entity generations in Redis (needs REDIS_URL). */
  entityCache: EntityCacheConfig;
  /** Error codes of subgraphs of another graph that production lets through (PUBLIC_ERROR_CODES, comma-separated). */
  publicErrorCodes: string[];
  /** Access tokens (JWT_SECRET or JWT_JWKS_URL, JWT_ISSUER, JWT_AUDIENCE) and the identity key (IDENTITY_SECRET). */
  auth: RouterAuthConfig;
}

function readRouterAuth(env: NodeJS.ProcessEnv): RouterAuthConfig {
  const production = readString(env, 'NODE_ENV', 'development') === 'production';
  return { jwt: readJwtVerifierConfig(env, production), identitySecret: readIdentitySecret(env, production) };
}

const DEFAULT_SUPERGRAPH = fileURLToPath(new URL('../../schema/supergraph.graphql', import.meta.url));
const SUBGRAPH_URL_VAR = /^([A-Z][A-Z0-9_]*)_SUBGRAPH_URL$/;
const SUBGRAPH_TIMEOUT_VAR = /^([A-Z][A-Z0-9_]*)_SUBGRAPH_TIMEOUT_MS$/;

/** Deadlines by subgraph name from `<NAME>_SUBGRAPH_TIMEOUT_MS`. */
function readSubgraphTimeouts(env: NodeJS.ProcessEnv): Record<string, number> {
  const timeouts: Record<string, number> = {};
  for (const key of Object.keys(env)) {
    const match = SUBGRAPH_TIMEOUT_VAR.exec(key);
    if (match) timeouts[match[1]!.toLowerCase()] = readInt(env, key, 0, 1);
  }
  return timeouts;
}

/** A comma-separated list of error codes (`[A-Z][A-Z0-9_]*`). */
function readCodeList(env: NodeJS.ProcessEnv, name: string): string[] {
  const codes = (readOptional(env, name) ?? '').split(',').map((c) => c.trim()).filter(Boolean);
  const bad = codes.find((c) => !/^[A-Z][A-Z0-9_]*$/.test(c));
  if (bad !== undefined) throw new ConfigError(`${name}: "${bad}" is not an error code (upper case letters, digits, _)`);
  return codes;
}

/** A file path from the environment, relative to where the user ran npm (INIT_CWD). */
function optionalPath(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = readOptional(env, name);
  return value === undefined ? undefined : path.resolve(env.INIT_CWD ?? process.cwd(), value);
}

/** Reads flags (`--supergraph`, `--port`) over the environment. */
export function readRouterConfig(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): RouterConfig {
  const { values } = parseArgs({
    args: argv,
    options: { supergraph: { type: 'string' }, port: { type: 'string' } },
    strict: true,
  });
  const merged = { ...env, ...(values.port ? { PORT: values.port } : {}) };
  const subgraphUrls: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    const match = SUBGRAPH_URL_VAR.exec(key);
    if (!match || !value) continue;
    try {
      new URL(value);
    } catch {
      throw new ConfigError(`${key} is not a valid URL`);
    }
    subgraphUrls[match[1]!.toLowerCase()] = value;
  }
  return {
    ...readServiceConfig(merged, 4000),
    metricsPort: readPort(env, 'METRICS_PORT', 9464),
    metricsHost: readString(env, 'METRICS_HOST', '127.0.0.1'),
    // Relative paths are taken from where the user ran npm (INIT_CWD), not from the workspace folder npm switches to.
    supergraphPath: path.resolve(env.INIT_CWD ?? process.cwd(), values.supergraph ?? readString(env, 'SUPERGRAPH_PATH', DEFAULT_SUPERGRAPH)),
    subgraphUrls,
    subgraphTimeoutMs: readInt(env, 'SUBGRAPH_TIMEOUT_MS', 10_000, 1),
    resilience: {
      timeoutMs: readInt(env, 'SUBGRAPH_TIMEOUT_MS', 10_000, 1),
      timeoutsMs: readSubgraphTimeouts(env),
      breakerFailures: readInt(env, 'SUBGRAPH_BREAKER_FAILURES', 5, 0),
      breakerCooldownMs: readInt(env, 'SUBGRAPH_BREAKER_COOLDOWN_MS', 5_000, 1),
      breakerCheckMs: readInt(env, 'SUBGRAPH_BREAKER_CHECK_MS', 250, 0, 60_000),
      retries: readInt(env, 'SUBGRAPH_RETRIES', 1, 0, 3),
      retryDelayMs: readInt(env, 'SUBGRAPH_RETRY_DELAY_MS', 50, 0, 10_000),
      dedup: readBool(env, 'SUBGRAPH_DEDUP', true),
    },
    entityCache: {
      enabled: readBool(env, 'ENTITY_CACHE', true),
      ttlMs: readInt(env, 'ENTITY_CACHE_TTL_MS', 60_000, 1),
      maxEntries: readInt(env, 'ENTITY_CACHE_MAX_ENTRIES', 100_000, 1),
      redisTimeoutMs: readInt(env, 'ENTITY_CACHE_REDIS_TIMEOUT_MS', 100, 1),
    },
    safelistPath: optionalPath(env, 'PERSISTED_QUERIES_SAFELIST'),
    publicErrorCodes: readCodeList(env, 'PUBLIC_ERROR_CODES'),
    auth: readRouterAuth(env),
    redisUrl: readUrl(env, 'REDIS_URL', ['redis:', 'rediss:']),
    keyPrefix: readString(env, 'QUEUE_PREFIX', 'shop'),
    rateLimit: {
      max: readInt(env, 'RATE_LIMIT_MAX', 600, 0),
      windowMs: readInt(env, 'RATE_LIMIT_WINDOW_MS', 60_000, 100),
      trustProxy: readBool(env, 'TRUST_PROXY', false),
    },
    loginThrottle: {
      accountFailures: readInt(env, 'LOGIN_FAILURES_PER_ACCOUNT', 5, 0),
      addressFailures: readInt(env, 'LOGIN_FAILURES_PER_ADDRESS', 20, 1),
      backoffMs: readInt(env, 'LOGIN_BACKOFF_MS', 1_000, 1),
      maxBackoffMs: readInt(env, 'LOGIN_BACKOFF_MAX_MS', 900_000, 1),
    },
    // Defaults leave room for every operation the README and the tests run (OrderDetails is 5 deep and costs 192;
    // `orders(first: 20)` with items, products and stock costs 1721; Sandbox's introspection query is 163 tokens).
    limits: {
      maxDepth: readInt(env, 'MAX_QUERY_DEPTH', 12, 1),
      maxCost: readInt(env, 'MAX_QUERY_COST', 5000, 1),
      maxAliases: readInt(env, 'MAX_ALIASES', 30, 0),
      maxRootFields: readInt(env, 'MAX_ROOT_FIELDS', 10, 1),
      maxTokens: readInt(env, 'MAX_TOKENS', 5000, 100),
    },
  };
}
