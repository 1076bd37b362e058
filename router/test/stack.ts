import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createLogger, listen, type Listening, type Logger } from '@shop/common';
import { startTestSubgraph, type TestSubgraph } from '@shop/common/testing';
import { users } from '@shop/users';
import { products } from '@shop/products';
import { orders } from '@shop/orders';
import { inventory } from '@shop/inventory';
import { readRouterConfig } from '../src/config.js';
import { createRouter, type Router } from '../src/server.js';

export const COMMITTED_SUPERGRAPH = fileURLToPath(new URL('../../schema/supergraph.graphql', import.meta.url));

export type SubgraphName = 'users' | 'products' | 'orders' | 'inventory';
const DEFINITIONS = { users, products, orders, inventory } as const;

/** Log lines a test can read back. */
export function captureLog(name: string): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ name, level: 'debug' }, sink), lines };
}

export interface Stack {
  url: string;
  subgraphs: Record<SubgraphName, TestSubgraph>;
  router: Router;
  http: Listening;
  stop(): Promise<void>;
}

/**
 * The whole graph on loopback: the four subgraphs on ephemeral ports with fresh
 * seeded databases, and a router on the committed supergraph pointed at them.
 */
export async function startStack(
  options: { supergraphPath?: string; logs?: Partial<Record<SubgraphName | 'router', Logger>> } = {},
): Promise<Stack> {
  const entries = await Promise.all(
    (Object.keys(DEFINITIONS) as SubgraphName[]).map(
      async (name) =>
        [name, await startTestSubgraph(DEFINITIONS[name] as never, { seed: true, log: options.logs?.[name] })] as const,
    ),
  );
  const subgraphs = Object.fromEntries(entries) as unknown as Record<SubgraphName, TestSubgraph>;
  const env: NodeJS.ProcessEnv = { SUPERGRAPH_PATH: options.supergraphPath ?? COMMITTED_SUPERGRAPH };
  for (const [name, subgraph] of entries) env[`${name.toUpperCase()}_SUBGRAPH_URL`] = subgraph.url;
  const config = readRouterConfig([], env);
  const router = await createRouter(config, options.logs?.router ?? createLogger('router', 'silent'));
  const http = await listen(router.listener, 0, '127.0.0.1');
  router.attachWebSockets(http.server);
  return {
    url: http.url,
    subgraphs,
    router,
    http,
    async stop() {
      await router.stop();
      await http.close();
      await Promise.all(entries.map(([, s]) => s.close()));
    },
  };
}
