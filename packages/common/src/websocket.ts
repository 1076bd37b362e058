import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { GraphQLError, type GraphQLSchema } from 'graphql';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { requestIdOf } from './http.js';
import type { Identity } from './identity.js';
import type { Logger } from './logger.js';
import type { SubgraphRequestInfo } from './service.js';

/**
 * A subgraph's subscriptions over graphql-ws on its /graphql path. The router
 * multiplexes many client subscriptions over one such socket and passes each
 * one's request id and signed identity in the subscribe message's extensions.
 */
export function serveSubscriptions(
  server: Server,
  schema: GraphQLSchema,
  log: Logger,
  handlers: {
    /** Verifies a signed identity (null when absent); throws a GraphQLError when it is invalid. */
    identify: (given: unknown, log: Logger) => Identity | null;
    context: (info: SubgraphRequestInfo) => unknown;
  },
): { close(): Promise<void>; readonly clientCount: number } {
  const wss = new WebSocketServer({ server, path: '/graphql' });
  const requestIdOfPayload = (request: Parameters<typeof requestIdOf>[0], extensions: Record<string, unknown> | undefined | null) => {
    const given = extensions?.requestId;
    return typeof given === 'string' && given.length <= 128 ? given : requestIdOf(request) || randomUUID();
  };
  const cleanup = useServer(
    {
      schema,
      // The identity is per subscription, not per socket: one router socket carries many subscribers.
      onSubscribe: (ctx, _id, payload) => {
        const requestId = requestIdOfPayload(ctx.extra.request, payload.extensions);
        try {
          handlers.identify(payload.extensions?.identity, log.child({ requestId }));
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        return undefined;
      },
      context: (ctx, _id, payload) => {
        const requestId = requestIdOfPayload(ctx.extra.request, payload.extensions);
        const requestLog = log.child({ requestId });
        const identity = handlers.identify(payload.extensions?.identity, requestLog);
        return handlers.context({ req: ctx.extra.request, requestId, log: requestLog, identity }) as Record<string, unknown>;
      },
    },
    wss,
  );
  return {
    get clientCount() {
      return wss.clients.size;
    },
    async close() {
      for (const socket of wss.clients) socket.close(1001, 'Subgraph shutting down');
      await cleanup.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
