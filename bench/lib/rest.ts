import { callSubgraph, type SubgraphUrls } from './direct.js';
import type { Money, OrderDetails } from './operations.js';

/**
 * The aggregation many shops start from, as an order endpoint would write it:
 * read the order from the order service, then its user from the user service,
 * then each line's product from the product service and its stock and shipping
 * estimate from the inventory service (lines side by side, one call each).
 * Same data as OrderDetails; 2 + 2 x lines service calls.
 */
const ORDER = `query($id: ID!) { order(id: $id) {
  id status createdAt total { amount currency } user { id }
  items { quantity unitPrice { amount currency } subtotal { amount } product { id } }
} }`;
const USER = 'query($id: ID!) { user(id: $id) { id name email } }';
const PRODUCT = 'query($id: ID!) { product(id: $id) { id sku name price { amount currency } weightGrams } }';
const STOCK = `query($reps: [_Any!]!) { _entities(representations: $reps) {
  ... on Product { stock inStock shippingEstimate { amount currency } }
} }`;

interface OrderRow {
  id: string;
  status: string;
  createdAt: string;
  total: Money;
  user: { id: string };
  items: { quantity: number; unitPrice: Money; subtotal: { amount: number }; product: { id: string } }[];
}
interface ProductRow {
  id: string;
  sku: string;
  name: string;
  price: Money;
  weightGrams: number;
}

export async function restOrderDetails(urls: SubgraphUrls, id: string): Promise<OrderDetails> {
  const { order } = await callSubgraph<{ order: OrderRow | null }>(urls, 'orders', ORDER, { id });
  if (!order) return { order: null };
  const { user } = await callSubgraph<{ user: { id: string; name: string; email: string } }>(urls, 'users', USER, { id: order.user.id });
  const items = await Promise.all(
    order.items.map(async (item) => {
      const { product } = await callSubgraph<{ product: ProductRow }>(urls, 'products', PRODUCT, { id: item.product.id });
      const reps = [{ __typename: 'Product', id: product.id, price: product.price, weightGrams: product.weightGrams }];
      const { _entities: [stock] } = await callSubgraph<{ _entities: { stock: number; inStock: boolean; shippingEstimate: Money | null }[] }>(
        urls,
        'inventory',
        STOCK,
        { reps },
      );
      const { weightGrams: _weight, ...fields } = product;
      return { quantity: item.quantity, unitPrice: item.unitPrice, subtotal: item.subtotal, product: { ...fields, ...stock! } };
    }),
  );
  return { order: { ...order, user, items } };
}
