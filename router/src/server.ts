import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { createRedis, formatError, graphqlRequestListener, operationSpanPlugin, probeRoutes, type Logger } from '@shop/common';
import { RedisQueryCache } from './apq-cache.js';
import { Safelist } from './safelist.js';
import { clientAddress, rateLimitCheck, rateLimiter } from './rate-limit.js';
import { LoginThrottle } from './login-throttle.js';
import { clientErrorFormatter, clientErrorsPlugin } from './client-errors.js';
import { OperationLabels, RouterMetrics } from './metrics.js';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { GraphQLFormattedError, GraphQLSchema } from 'graphql';
import type { RouterContext } from './context.js';
import { SubgraphDataSource } from './datasource.js';
import { EntityCache } from './entity-cache.js';
import type { RouterConfig } from './config.js';
import { supergraphFromFile } from './supergraph-file.js';
import { SubscriptionExecutor } from './subscriptions.js';
import { SUBSCRIPTION_SHARING } from './shared-subscription.js';
import { costLimitPlugin, limitErrorFormatter, limitRules } from './limits.js';
import { serveWebSockets, type WebSocketEndpoint } from './websocket.js';
import { createAuthenticator } from './auth.js';
import { SubgraphResilience } from './resilience.js';
import { createHttpFetch } from './http-fetch.js';
import { InFlightRequests } from './in-flight.js';
import { routerPublicCodes } from './error-codes.js';
import { DeferExecutor } from './defer.js';
import { IncrementalDelivery } from './incremental.js';

export interface Router {
  apollo: ApolloServer<RouterContext>;
  gateway: ApolloGateway;
  subscriptions: SubscriptionExecutor;
  /** Serves graphql-ws subscriptions on the HTTP server's /graphql path. */
  attachWebSockets(server: Server): void;
  /** The HTTP request listener of the client port: GraphQL at /graphql, /health, /ready. */
  listener: (req: IncomingMessage, res: ServerResponse) => void;
  /** The listener of the metrics port (METRICS_PORT): Prometheus metrics at /metrics, nothing else. */
  metricsListener: (req: IncomingMessage, res: ServerResponse) => void;
  /** Deadlines, breakers, retries and deduplication of subgraph fetches. */
  resilience: SubgraphResilience;
  /**
   * Graceful stop: no new connections (once WebSockets are attached), WebSockets closed with 1001, the
   * HTTP requests in progress answered (up to `graceMs`), then Apollo Server and Redis closed.
   */
  stop(graceMs?: number): Promise<void>;
}

/** One log line per operation, with the request id the client sees. */
function operationLog(): ApolloServerPlugin<RouterContext> {
  return {
    async requestDidStart({ contextValue }) {
      const started = performance.now();
      return {
        async willSendResponse({ operationName, errors, response }) {
          const body = response.body;
          const result = body.kind === 'single' ? body.singleResult : body.initialResult;
          const errorCount = (errors?.length ?? 0) || (result.errors?.length ?? 0);
          contextValue.log.info(
            {
              operationName: operationName ?? null,
              ms: Math.round((performance.now() - started) * 10) / 10,
              errors: errorCount,
              // @defer: the time and errors of the first payload; the others follow.
              ...(body.kind === 'incremental' ? { incremental: true } : {}),
            },
            'operation',
          );
        },
      };
    },
  };
}

/** Builds the router without listening, so tests and the entry point share it. */
export async function createRouter(config: RouterConfig, log: Logger): Promise<Router> {
  let subscriptionsOpen = () => 0;
  const safelist = config.safelistPath ? Safelist.fromManifestFile(config.safelistPath) : undefined;
  // Operation names label the metrics: the safelist's when it is enforced, otherwise the first ones seen.
  const metrics = new RouterMetrics(() => subscriptionsOpen(), new OperationLabels(undefined, safelist?.operationNames));
  // Node's fetch (undici) keeps connections to subgraphs alive; this adds deadlines, breakers, retries and dedup.
  const resilience: SubgraphResilience = new SubgraphResilience(
    config.resilience,
    log,
    metrics.watchResilience(() => resilience.states()),
    // node:http keep-alive instead of Node's fetch: a large share of the router's CPU per request (see BENCHMARKS.md).
    createHttpFetch(),
  );
  const observe = (subgraph: string, outcome: string, seconds: number) =>
    metrics.subgraphFetchDuration.observe({ subgraph, outcome }, seconds);
  // @apollo/gateway otherwise probes cloud metadata endpoints at construction and reports usage to Apollo
  // every hour. It reads only this variable; an operator can still opt in with APOLLO_TELEMETRY_DISABLED=false.
  process.env.APOLLO_TELEMETRY_DISABLED ??= 'true';
  // Persisted queries, the rate limit and the entity cache's generations: in Redis when configured, shared by replicas.
  const redis = config.redisUrl ? createRedis(config.redisUrl, log, { name: 'router' }) : undefined;
  const entityCache =
    redis && config.entityCache.enabled
      ? new EntityCache(redis, config.keyPrefix, config.entityCache, log, {
          looked: (subgraph, hits, misses) => {
            if (hits > 0) metrics.entityCacheEntities.inc({ subgraph, result: 'hit' }, hits);
            if (misses > 0) metrics.entityCacheEntities.inc({ subgraph, result: 'miss' }, misses);
          },
        })
      : undefined;
  const gateway = new ApolloGateway({
    supergraphSdl: supergraphFromFile(config.supergraphPath, log),
    buildService: ({ name, url }) => new SubgraphDataSource(name, config.subgraphUrls[name] ?? url ?? '', resilience, observe, entityCache),
    logger: log,
  });
  const subscriptions = new SubscriptionExecutor(
    (name, url) => new SubgraphDataSource(name, url, resilience, observe, entityCache),
    config.subgraphUrls,
    log,
    SUBSCRIPTION_SHARING,
    { onCombined: (subgraph, fetches) => metrics.entityFetchesCombined.inc({ subgraph }, fetches) },
  );
  subscriptionsOpen = () => subscriptions.openCount;
  // @defer: operations the gateway cannot execute, run by the router (see defer.ts, incremental.ts).
  const deferExecutor = new DeferExecutor(
    (name, url) => new SubgraphDataSource(name, url, resilience, observe, entityCache),
    config.subgraphUrls,
  );
  let apiSchema: GraphQLSchema | undefined;
  gateway.onSchemaLoadOrUpdate(({ apiSchema: schema, coreSupergraphSdl }) => {
    apiSchema = schema;
    subscriptions.updateSchema(schema, coreSupergraphSdl);
    deferExecutor.updateSchema(coreSupergraphSdl);
  });
  const mask = formatError(config.production, routerPublicCodes(config.publicErrorCodes));
  const withLimitCodes = limitErrorFormatter(config.limits.maxTokens);
  const formatErrorForClients = (formatted: GraphQLFormattedError, error: unknown) =>
    mask(clientErrorFormatter(withLimitCodes(formatted, error), error), error);
  const incremental = new IncrementalDelivery(deferExecutor, formatErrorForClients);
  const loginThrottle =
    redis && config.loginThrottle.accountFailures > 0 ? new LoginThrottle(redis, `${config.keyPrefix}:`, config.loginThrottle, log) : undefined;
  if (safelist) log.info({ operations: safelist.size, path: config.safelistPath }, 'safelist mode: only registered operations run');
  const apollo = new ApolloServer<RouterContext>({
    gateway: incremental.gateway(gateway),
    persistedQueries: {
      ...(safelist
        ? { cache: safelist.cache() }
        : redis
          ? { cache: new RedisQueryCache(redis, `${config.keyPrefix}:apq:`, log) }
          : {}),
      ttl: 7 * 24 * 3600,
    },
    introspection: !config.production,
    // No "Did you mean ...?" in production: with introspection off, suggestions would still spell the schema out.
    hideSchemaDetailsFromClientErrors: config.production,
    includeStacktraceInErrorResponses: !config.production,
    formatError: formatErrorForClients,
    csrfPrevention: true,
    // The process's own signal handlers stop the router gracefully; Apollo's would stop it under in-flight requests.
    stopOnTerminationSignals: false,
    parseOptions: { maxTokens: config.limits.maxTokens },
    validationRules: limitRules(config.limits),
    plugins: [
      incremental.plugin(),
      operationLog(),
      operationSpanPlugin<RouterContext>(),
      metrics.plugin(),
      // Before the cost limit: an unregistered operation is refused as such.
      ...(safelist ? [safelist.plugin<RouterContext>()] : []),
      // An unknown operationName or a subscription over HTTP: 400, not the gateway's 500.
      clientErrorsPlugin<RouterContext>(),
      costLimitPlugin(config.limits.maxCost),
      ...(loginThrottle ? [loginThrottle.plugin()] : []),
      config.production ? ApolloServerPluginLandingPageDisabled() : ApolloServerPluginLandingPageLocalDefault({ embed: true }),
    ],
  });
  await apollo.start();
  // Ready once a supergraph is loaded. Subgraphs are not checked: one being down gives partial answers,
  // not a router to take out of the load balancer.
  const probes = probeRoutes({
    schema: async () => {
      if (!apiSchema) throw new Error('no supergraph loaded yet');
    },
  });
  // One sliding window per client address for HTTP requests, WebSocket connections and the operations sent on them.
  const rateLimit = redis && config.rateLimit.max > 0 ? rateLimitCheck({ redis, keyPrefix: `${config.keyPrefix}:`, ...config.rateLimit, log }) : undefined;
  const limit = rateLimit
    ? rateLimiter({ redis: redis!, keyPrefix: `${config.keyPrefix}:`, ...config.rateLimit, path: '/graphql', log, check: rateLimit })
    : async () => false;
  const authenticate = createAuthenticator(config.auth, log);
  const serve = graphqlRequestListener(apollo, {
    log,
    corsOrigins: config.corsOrigins,
    allowLocalOrigins: !config.production,
    bodyLimitBytes: config.bodyLimitBytes,
    routes: async (req, res) => (await probes(req, res)) || (await limit(req, res)),
    // An invalid bearer token refuses the request (401 UNAUTHENTICATED); none is an anonymous caller.
    context: async ({ req, requestId, log: requestLog }) => ({
      requestId,
      log: requestLog,
      ...(loginThrottle ? { clientAddress: clientAddress(req, config.rateLimit.trustProxy) } : {}),
      ...(await authenticate(req.headers.authorization, requestLog)),
    }),
    // The router's request-path code logs through the request's logger (context.log), so it needs no
    // AsyncLocalStorage context, whose promise hooks cost about an eighth of its CPU per request.
    asyncLogContext: false,
  });
  const inFlight = new InFlightRequests();
  let websockets: WebSocketEndpoint | undefined;
  let httpServer: Server | undefined;
  return {
    apollo,
    gateway,
    subscriptions,
    resilience,
    listener: (req, res) => {
      inFlight.track(res);
      serve(req, res);
    },
    metricsListener: metrics.listener(),
    attachWebSockets(server) {
      httpServer = server;
      websockets = serveWebSockets({
        server,
        path: '/graphql',
        apollo,
        executor: subscriptions,
        schema: () => apiSchema,
        limits: config.limits,
        safelist,
        authenticate,
        production: config.production,
        rateLimit,
        trustProxy: config.rateLimit.trustProxy,
        log,
      });
    },
    async stop(graceMs = 10_000) {
      // Stop accepting first; the caller's HTTP close then only waits for connections still open.
      httpServer?.close();
      await websockets?.close();
      await inFlight.drain(graceMs);
      await subscriptions.close();
      await apollo.stop();
      resilience.close();
      redis?.disconnect();
    },
  };
}
