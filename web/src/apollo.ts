import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { SetContextLink } from '@apollo/client/link/context';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { Defer20220824Handler } from '@apollo/client/incremental';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';

/** Hex SHA-256 of a query, for automatic persisted queries (Web Crypto: localhost and HTTPS pages). */
async function sha256(query: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(query));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function webSocketUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
}

/**
 * The client of one session (a new one on login and logout, so no cached data or socket outlives its caller):
 * queries and mutations over HTTP with automatic persisted queries (the query's hash first, its text only when the
 * router does not know it yet) and `@defer` answers read as they arrive; subscriptions over graphql-ws. Both go to
 * /graphql on this origin (Vite's dev server or the static server proxies it to the router).
 */
export function createApolloClient(token: string | undefined): ApolloClient {
  const authorization = token ? { authorization: `Bearer ${token}` } : undefined;
  const auth = new SetContextLink((previous) => ({ headers: { ...(previous.headers as Record<string, string> | undefined), ...authorization } }));
  const http = ApolloLink.from([auth, new PersistedQueryLink({ sha256 }), new HttpLink({ uri: '/graphql' })]);
  const ws = new GraphQLWsLink(createClient({ url: webSocketUrl(), connectionParams: () => authorization ?? {}, lazy: true }));
  const link = ApolloLink.split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
    },
    ws,
    http,
  );
  return new ApolloClient({ link, cache: new InMemoryCache(), incrementalHandler: new Defer20220824Handler() });
}
