import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop } from '@shop/common';
import { ADMIN, customer, graphql, startTestSubgraph, type GraphQLResponse, type TestSubgraph } from '@shop/common/testing';
import { orders } from '../src/server.js';

const shop = demoShop();
const alice = shop.users[1]!;
const bob = shop.users[2]!;
const aliceOrder = shop.orders.find((o) => o.userId === alice.id)!;
const codes = (res: GraphQLResponse) => res.errors?.map((e) => e.extensions?.code);

let subgraph: TestSubgraph;

beforeAll(async () => {
  subgraph = await startTestSubgraph(orders, { seed: true });
});
afterAll(() => subgraph?.close());

describe('rules of the orders subgraph, with identities as the router signs them', () => {
  const ORDER = 'query($id: ID!) { order(id: $id) { id user { id } } }';

  it('answers an order to its customer and administrators only', async () => {
    for (const identity of [customer(alice.id), ADMIN]) {
      const res = await graphql(subgraph.url, ORDER, { id: aliceOrder.id }, subgraph.as(identity));
      expect(res.data).toEqual({ order: { id: aliceOrder.id, user: { id: alice.id } } });
    }
    expect(codes(await graphql(subgraph.url, ORDER, { id: aliceOrder.id }, subgraph.as(customer(bob.id))))).toEqual(['FORBIDDEN']);
    expect(codes(await graphql(subgraph.url, ORDER, { id: aliceOrder.id }))).toEqual(['UNAUTHENTICATED']);
  });

  it("resolves an order reference to null for anyone but its customer, an administrator or a service", async () => {
    const query = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Order { id } } }';
    const r = [{ __typename: 'Order', id: aliceOrder.id }];
    expect((await graphql(subgraph.url, query, { r }, subgraph.as(customer(bob.id)))).data).toEqual({ _entities: [null] });
    expect((await graphql(subgraph.url, query, { r })).data).toEqual({ _entities: [null] });
    expect((await graphql(subgraph.url, query, { r }, subgraph.as({ sub: 'users', role: 'SERVICE' }))).data).toEqual({
      _entities: [{ id: aliceOrder.id }],
    });
  });

  it("lists a customer's own orders only, and refuses naming another user", async () => {
    const mine = await graphql<{ orders: { edges: { node: { user: { id: string } } }[] } }>(
      subgraph.url,
      '{ orders(first: 100) { edges { node { user { id } } } } }',
      undefined,
      subgraph.as(customer(alice.id)),
    );
    const expected = shop.orders.filter((o) => o.userId === alice.id).length;
    expect(mine.data?.orders.edges).toHaveLength(expected);
    expect(mine.data?.orders.edges.every((e) => e.node.user.id === alice.id)).toBe(true);
    const other = await graphql(subgraph.url, 'query($u: ID!) { orders(userId: $u) { edges { cursor } } }', { u: bob.id }, subgraph.as(customer(alice.id)));
    expect(codes(other)).toEqual(['FORBIDDEN']);
    const entity = await graphql(
      subgraph.url,
      'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { orders { edges { cursor } } } } }',
      { r: [{ __typename: 'User', id: bob.id }] },
      subgraph.as(customer(alice.id)),
    );
    expect(codes(entity)).toEqual(['FORBIDDEN']);
  });

  it('keeps status changes for administrators and placing orders for people', async () => {
    const status = await graphql(
      subgraph.url,
      'mutation($id: ID!) { updateOrderStatus(id: $id, status: SHIPPED) { status } }',
      { id: aliceOrder.id },
      subgraph.as(customer(alice.id)),
    );
    expect(codes(status)).toEqual(['FORBIDDEN']);
    const [row] = await subgraph.db.query<{ status: string }>('SELECT status FROM orders WHERE id = $1', [aliceOrder.id]);
    expect(row?.status).toBe(aliceOrder.status);
    const place = await graphql(
      subgraph.url,
      'mutation($p: ID!) { placeOrder(input: { items: [{ productId: $p, quantity: 1 }] }) { id } }',
      { p: shop.products[0]!.id },
      subgraph.as({ sub: 'users', role: 'SERVICE' }),
    );
    expect(codes(place)).toEqual(['FORBIDDEN']);
  });

  it("refuses a subscription to another customer's orders, sent straight to the subgraph", async () => {
    const client = createClient({ url: subgraph.url.replace('http', 'ws'), webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
    try {
      const outcome = await new Promise<unknown>((resolve) => {
        client.subscribe(
          {
            query: 'subscription($u: ID!) { orderUpdates(userId: $u) { id } }',
            variables: { u: alice.id },
            extensions: { identity: subgraph.as(customer(bob.id))['x-shop-identity'] },
          },
          { next: resolve, error: resolve, complete: () => resolve('complete') },
        );
      });
      const errors = (outcome as { errors?: { extensions?: { code?: string } }[] }).errors ?? (outcome as { extensions?: { code?: string } }[]);
      expect(errors.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    } finally {
      await client.dispose();
    }
  });
});
