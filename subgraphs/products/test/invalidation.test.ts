import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop } from '@shop/common';
import { ADMIN, generationChanges, graphql, startWithAndWithoutRuntime, type SubgraphPair } from '@shop/common/testing';
import { products, type ProductsRuntime } from '../src/server.js';

const shop = demoShop();
let pair: SubgraphPair<ProductsRuntime>;

const CREATE = 'mutation($input: CreateProductInput!) { createProduct(input: $input) { id sku } }';
const UPDATE = 'mutation($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id name } }';
const ENTITIES = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id name } } }';

const newProduct = (sku: string) => ({
  sku,
  name: 'Invalidation Lamp',
  description: '',
  price: { amount: 1999, currency: 'USD' },
  category: 'lighting',
  weightGrams: 800,
});

beforeAll(async () => {
  // The same subgraph without its runtime has no Redis: it must not say that it keeps the contract.
  pair = await startWithAndWithoutRuntime(products, 'products-invalidation', { seed: true });
});
afterAll(() => pair?.close());

describe('products subgraph: entity cache contract', () => {
  it('says so on its answers when its runtime has Redis, and reports Redis in /ready', async () => {
    const p = shop.products[5]!;
    const res = await graphql(pair.subgraph.url, ENTITIES, { r: [{ __typename: 'Product', id: p.id }] });
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ _entities: [{ id: p.id, name: p.name }] });
    expect(res.headers.get('x-shop-entity-cache')).toBe('1');
    const ready = await fetch(new URL('/ready', pair.subgraph.url));
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', redis: 'ok' } });
  });

  it('increments the generation of a product it creates before answering', async () => {
    const { result: res, changed } = await generationChanges(pair.redis, () =>
      graphql<{ createProduct: { id: string } }>(pair.subgraph.url, CREATE, { input: newProduct('INV-00001') }, pair.subgraph.as(ADMIN)),
    );
    expect(res.errors).toBeUndefined();
    expect(changed).toEqual({ [`products:Product:${res.data!.createProduct.id}`]: 1 });
  });

  it('increments the generation of a product it changes before answering, once per change', async () => {
    const p = shop.products[6]!;
    for (const name of ['Renamed once', 'Renamed twice']) {
      const { result: res, changed } = await generationChanges(pair.redis, () =>
        graphql(pair.subgraph.url, UPDATE, { id: p.id, input: { name } }, pair.subgraph.as(ADMIN)),
      );
      expect(res.data).toEqual({ updateProduct: { id: p.id, name } });
      expect(changed).toEqual({ [`products:Product:${p.id}`]: 1 });
    }
  });

  it('increments nothing for a write it refuses', async () => {
    const refused = [
      () => graphql(pair.subgraph.url, CREATE, { input: newProduct(shop.products[0]!.sku) }, pair.subgraph.as(ADMIN)),
      () => graphql(pair.subgraph.url, UPDATE, { id: shop.products[7]!.id, input: { sku: shop.products[8]!.sku } }, pair.subgraph.as(ADMIN)),
      () => graphql(pair.subgraph.url, UPDATE, { id: '00000000-0000-4000-8000-000000000000', input: { name: 'X' } }, pair.subgraph.as(ADMIN)),
      () => graphql(pair.subgraph.url, UPDATE, { id: shop.products[7]!.id, input: { name: 'Not allowed' } }),
    ];
    for (const write of refused) {
      const { result: res, changed } = await generationChanges(pair.redis, write);
      expect(res.errors?.[0]?.extensions?.code).toMatch(/^(BAD_USER_INPUT|NOT_FOUND|UNAUTHENTICATED)$/);
      expect(changed).toEqual({});
    }
  });

  it('without a runtime still writes, and does not say that it keeps the contract', async () => {
    const res = await graphql<{ createProduct: { id: string; sku: string } }>(pair.bare.url, CREATE, { input: newProduct('INV-00002') }, pair.bare.as(ADMIN));
    expect(res.errors).toBeUndefined();
    expect(res.data!.createProduct.sku).toBe('INV-00002');
    expect(res.headers.get('x-shop-entity-cache')).toBeNull();
    const read = await graphql(pair.bare.url, ENTITIES, { r: [{ __typename: 'Product', id: res.data!.createProduct.id }] });
    expect(read.data).toEqual({ _entities: [{ id: res.data!.createProduct.id, name: 'Invalidation Lamp' }] });
    expect(read.headers.get('x-shop-entity-cache')).toBeNull();
  });
});
