import { subgraphHeaders } from './auth.js';
import { postJson } from './http.js';
import type { Money, OrderDetails, PlannedFetch } from './operations.js';

/** Subgraph GraphQL endpoints by name. */
export type SubgraphUrls = Record<'users' | 'products' | 'orders' | 'inventory', string>;

interface Response<T> {
  data?: T | null;
  errors?: { message: string }[];
}

/** Direct subgraph calls made by this process so far, by subgraph (the counts scenario reads it). */
export const directCalls: Record<string, number> = {};

/** POSTs one operation to a subgraph; every direct call goes through here. */
export async function callSubgraph<T>(urls: SubgraphUrls, subgraph: keyof SubgraphUrls, query: string, variables: object): Promise<T> {
  directCalls[subgraph] = (directCalls[subgraph] ?? 0) + 1;
  const res = await postJson(urls[subgraph], { query, variables }, subgraphHeaders(subgraph));
  const body = res.json as Response<T>;
  if (res.status !== 200 || body.errors || !body.data) throw new Error(`${subgraph} answered ${res.status}: ${JSON.stringify(body.errors ?? body)}`);
  return body.data;
}

interface Ref {
  __typename: string;
  id: string;
}
interface PlannedOrder {
  order: {
    id: string;
    status: string;
    createdAt: string;
    total: Money;
    user: Ref;
    items: { quantity: number; unitPrice: Money; subtotal: { amount: number }; product: Ref }[];
  } | null;
}
interface ProductFields {
  sku: string;
  name: string;
  price: Money;
  weightGrams: number;
}
interface StockFields {
  inStock: boolean;
  stock: number;
  shippingEstimate: Money | null;
}

/**
 * OrderDetails without a router: the query plan's own fetches (the same operation
 * texts), issued in the plan's order by hand: orders, then users and products at
 * once, then inventory with the price and weight it requires.
 */
export function directOrderDetails(urls: SubgraphUrls, fetches: readonly PlannedFetch[]): (id: string) => Promise<OrderDetails> {
  const services = fetches.map((f) => f.service).join(',');
  if (services !== 'orders,users,products,inventory') {
    throw new Error(`the direct client follows the plan orders, users, products, inventory; the plan is now ${services}`);
  }
  const [ordersOp, usersOp, productsOp, inventoryOp] = fetches.map((f) => f.operation) as [string, string, string, string];
  return async (id) => {
    const { order } = await callSubgraph<PlannedOrder>(urls, 'orders', ordersOp, { id });
    if (!order) return { order: null };
    const refs = order.items.map((item) => item.product);
    const [users, products] = await Promise.all([
      callSubgraph<{ _entities: { name: string; email: string }[] }>(urls, 'users', usersOp, { representations: [order.user] }),
      callSubgraph<{ _entities: ProductFields[] }>(urls, 'products', productsOp, { representations: refs }),
    ]);
    const required = refs.map((ref, i) => {
      const p = products._entities[i]!;
      return { __typename: ref.__typename, price: p.price, weightGrams: p.weightGrams, id: ref.id };
    });
    const stock = await callSubgraph<{ _entities: StockFields[] }>(urls, 'inventory', inventoryOp, { representations: required });
    const user = users._entities[0]!;
    return {
      order: {
        id: order.id,
        status: order.status,
        createdAt: order.createdAt,
        total: order.total,
        user: { id: order.user.id, name: user.name, email: user.email },
        items: order.items.map((item, i) => {
          const p = products._entities[i]!;
          const s = stock._entities[i]!;
          return {
            quantity: item.quantity,
            unitPrice: item.unitPrice,
            subtotal: item.subtotal,
            product: { id: item.product.id, sku: p.sku, name: p.name, price: p.price, inStock: s.inStock, stock: s.stock, shippingEstimate: s.shippingEstimate },
          };
        }),
      },
    };
  };
}
