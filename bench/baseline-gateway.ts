/**
 * The baseline users start from: a plain @apollo/gateway in a plain @apollo/server
 * (startStandaloneServer), default settings, on the same supergraph file as the
 * router. The only addition is what the graph needs to answer at all: with
 * authentication in the graph, the signed identity each subgraph expects.
 */
import { readFileSync } from 'node:fs';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { loadIdentity, subgraphHeaders, supergraphHasLogin } from './lib/auth.js';

const supergraphPath = process.env.SUPERGRAPH_PATH!;
const withIdentity = supergraphHasLogin(supergraphPath);
if (withIdentity) await loadIdentity();
const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(supergraphPath, 'utf8'),
  ...(withIdentity
    ? {
        buildService: ({ name, url }) =>
          new (class extends RemoteGraphQLDataSource {
            override willSendRequest({ request }: Parameters<RemoteGraphQLDataSource['willSendRequest'] & object>[0]) {
              for (const [key, value] of Object.entries(subgraphHeaders(name))) request.http?.headers.set(key, value);
            }
          })({ url }),
      }
    : {}),
});
const server = new ApolloServer({ gateway });
await startStandaloneServer(server, { listen: { port: Number(process.env.PORT), host: process.env.HOST ?? '127.0.0.1' } });
process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
