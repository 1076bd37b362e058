import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { GraphQLSchema } from 'graphql';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { requestIdOf, type RequestInfo } from './http.js';
import type { Logger } from './logger.js';

/**
 * A subgraph's subscriptions over graphql-ws on its /graphql path. The router
 * multiplexes many client subscriptions over one such socket and passes each
 * one's request id in the subscribe message's extensions.
 */
export function serveSubscriptions(
  server: Server,
  schema: GraphQLSchema,
  log: Logger,
  context: (info: RequestInfo) => unknown,
): { close(): Promise<void>; readonly clientCount: number } {
  const wss = new WebSocketServer({ server, path: '/graphql' });
  const cleanup = useServer(
    {
      schema,
      context: (ctx, _id, payload) => {
        const given = payload.extensions?.requestId;
        const requestId = typeof given === 'string' && given.length <= 128 ? given : requestIdOf(ctx.extra.request) || randomUUID();
        return context({ req: ctx.extra.request, requestId, log: log.child({ requestId }) }) as Record<string, unknown>;
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
