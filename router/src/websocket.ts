import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import {
  GraphQLError,
  getOperationAST,
  parse,
  print,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLSchema,
} from 'graphql';
import { WebSocketServer, type WebSocket } from 'ws';
import type { IncomingMessage } from 'node:http';
import { useServer } from 'graphql-ws/use/ws';
import type { ApolloServer } from '@apollo/server';
import { ErrorCode, requestIdOf, withoutSuggestions, type Logger } from '@shop/common';
import type { RouterContext } from './context.js';
import type { SubscriptionExecutor } from './subscriptions.js';
import { checkCost, limitRules, tokenLimitError, type OperationLimits } from './limits.js';
import type { Safelist } from './safelist.js';
import { INVALID_TOKEN_MESSAGE, type Caller } from './auth.js';
import { clientAddress, rateLimitedError, type RateLimitCheck } from './rate-limit.js';
import { operationResolutionError } from './client-errors.js';

/** graphql-ws's close code for a connection that is not (or no longer) authorized; the client logs in again. */
export const CLOSE_FORBIDDEN = 4403;

function closeExpired(socket: WebSocket): void {
  if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(CLOSE_FORBIDDEN, 'Forbidden: the access token has expired');
}

/** Closes the socket with 4403 when the caller's token expires (one timer per logged-in connection). */
function closeAtExpiry(socket: WebSocket, expiresAtMs: number | undefined): void {
  if (expiresAtMs === undefined) return;
  const delay = expiresAtMs - Date.now();
  // Beyond a timer's range (about 24.8 days) each operation's check still holds.
  if (delay > 2 ** 31 - 1) return;
  const timer = setTimeout(() => closeExpired(socket), Math.max(0, delay));
  socket.once('close', () => clearTimeout(timer));
}

/** How often the router pings each client socket (and how long it waits for the pong before closing it). */
export const KEEP_ALIVE_MS = 30_000;

export interface WebSocketEndpoint {
  close(): Promise<void>;
}

/**
 * graphql-ws (the graphql-transport-ws protocol) on the same path as HTTP:
 * subscriptions go to the federated subscription executor; queries and
 * mutations sent over the socket run through Apollo Server like HTTP ones.
 */
export function serveWebSockets(options: {
  server: Server;
  path: string;
  apollo: ApolloServer<RouterContext>;
  executor: SubscriptionExecutor;
  schema: () => GraphQLSchema | undefined;
  limits: OperationLimits;
  /** Safelist mode: only these operations run. */
  safelist?: Safelist;
  /** Verifies `connectionParams.authorization` once per connection (absent: anonymous). */
  authenticate?: (authorization: unknown) => Promise<Caller>;
  /** Production: no schema hints ("Did you mean ...?") in validation errors, as over HTTP. */
  production?: boolean;
  /** The per-client rate limit HTTP requests count against: each connection and each operation counts too. */
  rateLimit?: RateLimitCheck;
  /** Take the client address from X-Forwarded-For. */
  trustProxy?: boolean;
  log: Logger;
}): WebSocketEndpoint {
  const { rateLimit, production = false, trustProxy = false } = options;
  const rules = [...specifiedRules, ...limitRules(options.limits)];
  // Queries over the socket run through Apollo Server with the client's own text (a printed document would
  // have another hash: the persisted-query safelist and the document cache key on it).
  const sources = new WeakMap<DocumentNode, string>();
  const wss = new WebSocketServer({
    server: options.server,
    path: options.path,
    // A connection counts as a request: over the limit, the upgrade is answered with HTTP 429 and Retry-After.
    ...(rateLimit
      ? {
          verifyClient: (
            info: { req: IncomingMessage },
            done: (ok: boolean, status?: number, message?: string, headers?: Record<string, string>) => void,
          ) => {
            rateLimit(clientAddress(info.req, trustProxy)).then(
              (limited) => (limited ? done(false, 429, limited.message, { 'retry-after': String(limited.retryAfter) }) : done(true)),
              () => done(true),
            );
          },
        }
      : {}),
  });
  const cleanup = useServer<Record<string, unknown>, { requestId: string; caller: Caller; clientAddress: string }>(
    {
      onConnect: async (ctx) => {
        // One id per connection, from the upgrade request's header when the client sent one.
        ctx.extra.requestId = requestIdOf(ctx.extra.request);
        ctx.extra.clientAddress = clientAddress(ctx.extra.request, trustProxy);
        if (!options.authenticate) return true;
        try {
          const caller = await options.authenticate(ctx.connectionParams?.authorization);
          ctx.extra.caller = caller;
          closeAtExpiry(ctx.extra.socket, caller.expiresAtMs);
          return true;
        } catch (error) {
          if (!(error instanceof GraphQLError)) throw error;
          // graphql-ws closes the socket with 4403 Forbidden: the client must log in again before reconnecting.
          options.log.debug({ requestId: ctx.extra.requestId }, 'refused a WebSocket connection with an invalid token');
          return false;
        }
      },
      onSubscribe: async (ctx, _id, payload) => {
        // The token is checked for the life of the connection: an operation after it expired closes the socket.
        const expiresAtMs = ctx.extra.caller?.expiresAtMs;
        if (expiresAtMs !== undefined && Date.now() >= expiresAtMs) {
          closeExpired(ctx.extra.socket);
          return [new GraphQLError(INVALID_TOKEN_MESSAGE, { extensions: { code: ErrorCode.Unauthenticated } })];
        }
        if (rateLimit) {
          const limited = await rateLimit(ctx.extra.clientAddress ?? 'unknown');
          if (limited) return [rateLimitedError(limited)];
        }
        const schema = options.schema();
        if (!schema) return [new GraphQLError('The router has no schema yet', { extensions: { code: 'SERVICE_UNAVAILABLE' } })];
        if (options.safelist && !options.safelist.allows(payload.query)) return [options.safelist.refusal()];
        let document: DocumentNode;
        try {
          document = parse(payload.query, { maxTokens: options.limits.maxTokens });
        } catch (error) {
          const tooLong = tokenLimitError(error, options.limits.maxTokens, payload.query);
          return [tooLong ?? new GraphQLError((error as Error).message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
        }
        // The same rules and limits as HTTP; a limit's error keeps its own code.
        const errors = validate(schema, document, rules);
        if (errors.length > 0) {
          return errors.map((e) =>
            new GraphQLError(production ? withoutSuggestions(e.message) : e.message, {
              nodes: e.nodes,
              extensions: { code: 'GRAPHQL_VALIDATION_FAILED', ...e.extensions },
            }),
          );
        }
        const operation = getOperationAST(document, payload.operationName);
        if (!operation) {
          const unresolved = operationResolutionError(document, payload.operationName);
          return [new GraphQLError(unresolved.message, { extensions: { code: unresolved.extensions.code } })];
        }
        const tooCostly = operation && checkCost(schema, document, operation, payload.variables ?? undefined, options.limits.maxCost);
        if (tooCostly) return [tooCostly];
        sources.set(document, payload.query);
        const requestId = ctx.extra.requestId ?? randomUUID();
        const contextValue: RouterContext = {
          requestId,
          log: options.log.child({ requestId }),
          clientAddress: ctx.extra.clientAddress,
          ...ctx.extra.caller,
        };
        return {
          schema,
          document,
          variableValues: payload.variables ?? {},
          operationName: payload.operationName ?? undefined,
          contextValue,
        };
      },
      subscribe: (args) =>
        options.executor.subscribe({
          document: args.document,
          variables: (args.variableValues ?? {}) as Record<string, unknown>,
          operationName: args.operationName ?? undefined,
          context: args.contextValue as RouterContext,
        }),
      execute: async (args): Promise<ExecutionResult> => {
        const response = await options.apollo.executeOperation(
          {
            query: sources.get(args.document) ?? print(args.document),
            variables: (args.variableValues ?? {}) as Record<string, unknown>,
            operationName: args.operationName ?? undefined,
          },
          { contextValue: args.contextValue as RouterContext },
        );
        if (response.body.kind !== 'single') return { errors: [new GraphQLError('Incremental delivery is not supported over WebSocket')] };
        const { errors, ...result } = response.body.singleResult;
        // graphql-ws serializes errors with toJSON(); Apollo Server's are already formatted plain objects.
        return { ...result, ...(errors ? { errors: errors.map((e) => ({ ...e, toJSON: () => e })) } : {}) } as ExecutionResult;
      },
    },
    wss,
    // A ping per client every 30 s instead of graphql-ws's 12 s: with 10,000 sockets open the 12 s pings alone
    // took about 4% of the router's busy time while events were delivered. 30 s stays under the 60 s idle timeout
    // of common proxies and load balancers; a dead client is found a little later.
    KEEP_ALIVE_MS,
  );
  return {
    async close() {
      // 1001 "going away": clients reconnect (to another replica) instead of treating it as an error.
      for (const socket of wss.clients) socket.close(1001, 'Router shutting down');
      await cleanup.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
