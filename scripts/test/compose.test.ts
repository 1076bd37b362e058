import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeSubgraphs, readSupergraphConfig, type SubgraphEntry } from '../supergraph-config.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
let subgraphs: SubgraphEntry[];
let scratch: string;

beforeAll(async () => {
  ({ subgraphs } = await readSupergraphConfig(path.join(root, 'supergraph.yaml')));
  scratch = await mkdtemp(path.join(tmpdir(), 'compose-'));
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe('composition', () => {
  it('lists the four subgraphs with their routing URLs', () => {
    expect(subgraphs.map((s) => [s.name, s.url])).toEqual([
      ['users', 'http://localhost:4001/graphql'],
      ['products', 'http://localhost:4002/graphql'],
      ['orders', 'http://localhost:4003/graphql'],
      ['inventory', 'http://localhost:4004/graphql'],
    ]);
  });

  it('composes without errors or hints into the committed supergraph', async () => {
    const result = await composeSubgraphs(subgraphs);
    if ('errors' in result) throw new Error(result.errors.join('\n'));
    expect(result.hints).toBe(0);
    expect(result.supergraphSdl).toBe(await readFile(path.join(root, 'schema/supergraph.graphql'), 'utf8'));
    // The federation wiring the queries depend on.
    expect(result.supergraphSdl).toMatch(/@join__type\(graph: PRODUCTS, key: "sku"\)/);
    expect(result.supergraphSdl).toMatch(/shippingEstimate: Money @join__field\(graph: INVENTORY, requires: "price \{ amount currency \} weightGrams"\)/);
    expect(result.supergraphSdl).toMatch(/orders\(first: Int, after: String, status: OrderStatus\): OrderConnection! @join__field\(graph: ORDERS\)/);
  });

  it('reports a value type that differs between subgraphs as a composition error', async () => {
    const inventory = subgraphs.find((s) => s.name === 'inventory')!;
    const broken = path.join(scratch, 'inventory.graphql');
    const sdl = await readFile(inventory.schemaFile, 'utf8');
    await writeFile(broken, sdl.replace(/currency: String!/, 'currency: Int!'));
    const result = await composeSubgraphs(subgraphs.map((s) => (s === inventory ? { ...s, schemaFile: broken } : s)));
    expect('errors' in result && result.errors.join('\n')).toMatch(/Money\.currency/);
  });
});
